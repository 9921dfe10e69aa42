"""The HTTP API in process, against SQLite and PostgreSQL: five fields out, every refusal a 4xx."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.enrolment import Enrolment, purge_record, read_manifest
from app.main import create_app
from app.schemas import RELEASED_FIELDS
from matcher.dlib_engine import MODEL_ID
from tests.conftest import DATASETS, sample
from tests.test_enrolment import lfw_rows, write_manifest

FIVE_FIELDS = {"first_name", "middle_name", "last_name", "date_of_birth", "license_number"}


@pytest.fixture
def gallery_rows(sessions: sessionmaker[Session], settings: Settings, tmp_path: Path) -> list[dict]:
    """Three made-up licences: Obama and Biden from samples/, and one LFW person."""
    rows = lfw_rows(3)
    rows[0]["photo"], rows[1]["photo"] = "samples/obama.jpg", "samples/biden.jpg"
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    Enrolment(sessions, MODEL_ID, settings.encoder("central"), workers=1).run(
        read_manifest(manifest, DATASETS)
    )
    return rows


@pytest.fixture
def client(settings: Settings, gallery_rows: list[dict]) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def search(client: TestClient, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/searches", files={"probe": ("probe.jpg", data)}, data=form)


def test_a_match_releases_exactly_the_five_fields(
    client: TestClient, gallery_rows: list[dict]
) -> None:
    assert set(RELEASED_FIELDS) == FIVE_FIELDS
    response = search(client, sample("obama2.jpg"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"candidates"}
    [candidate] = body["candidates"]
    assert set(candidate) == FIVE_FIELDS | {"rank"}
    expected = gallery_rows[0]
    assert candidate["rank"] == 1
    assert candidate["license_number"] == expected["license_number"]
    assert candidate["date_of_birth"] == expected["date_of_birth"]
    assert "Quillfeather" not in response.text and "987-65-4321" not in response.text


def test_a_stranger_gets_no_candidates(client: TestClient) -> None:
    response = search(client, sample("alex-lacamoire.png"))
    assert response.status_code == 200 and response.json() == {"candidates": []}


def test_several_faces_then_the_chosen_box(client: TestClient, gallery_rows: list[dict]) -> None:
    refused = search(client, sample("two_people.jpg"))
    assert refused.status_code == 422
    body = refused.json()
    assert body["code"] == "multiple_faces" and len(body["faces"]) == 2 and body["message"]
    for face in body["faces"]:
        box = ",".join(str(face[k]) for k in ("left", "top", "right", "bottom"))
        assert search(client, sample("two_people.jpg"), face_box=box).status_code == 200


@pytest.mark.parametrize(
    ("data", "form", "status", "code"),
    [
        (b"GIF89a not really", {}, 422, "unsupported_image"),
        (b"", {}, 422, "unsupported_image"),
        (sample("obama.jpg")[:5000], {}, 422, "unsupported_image"),
        (sample("obama_partial_face.jpg"), {}, 422, "face_cut_off"),
        (sample("two_people.jpg"), {"face_box": "1,2,3"}, 422, "invalid_face_box"),
        (sample("two_people.jpg"), {"face_box": "9,9,1,1"}, 422, "invalid_face_box"),
        (sample("two_people.jpg"), {"face_box": "0,500,100,600"}, 422, "no_face"),
    ],
)
def test_refusals_are_4xx_with_a_code_and_a_sentence(
    client: TestClient, data: bytes, form: dict, status: int, code: str
) -> None:
    response = search(client, data, **form)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["message"].endswith(".")


def test_no_face(client: TestClient) -> None:
    background = Image.open(io.BytesIO(sample("obama-1080p.jpg"))).crop((0, 600, 500, 1080))
    buffer = io.BytesIO()
    background.save(buffer, "PNG")
    assert search(client, buffer.getvalue()).json()["code"] == "no_face"


def test_too_large_is_413(settings: Settings, gallery_rows: list[dict]) -> None:
    small = settings.model_copy(update={"max_image_bytes": 50_000})
    with TestClient(create_app(small)) as client:
        response = search(client, sample("obama.jpg"))
    assert response.status_code == 413 and response.json()["code"] == "image_too_large"


def test_missing_probe_and_unknown_routes(client: TestClient) -> None:
    missing = client.post("/v1/searches", data={"face_box": "1,2,3,4"})
    assert missing.status_code == 422 and missing.json()["code"] == "invalid_request"
    assert client.get("/v1/nothing").json()["code"] == "not_found"
    assert client.get("/v1/searches").status_code == 405


def test_health_reports_engine_and_gallery(client: TestClient) -> None:
    assert client.get("/v1/health").json() == {
        "status": "ok",
        "model_id": MODEL_ID,
        "templates": 3,
        "index_revision": 1,
    }


def test_search_route_is_off_unless_the_development_setting_is_on(settings: Settings) -> None:
    production = settings.model_copy(update={"dev_search_route": False})
    with TestClient(create_app(production)) as client:
        response = search(client, sample("obama.jpg"))
    assert response.status_code == 404
    assert Settings.model_fields["dev_search_route"].default is False


def test_service_rebuilds_a_damaged_index_at_start(
    settings: Settings, gallery_rows: list[dict]
) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/health").json()["templates"] == 3
    index_file = settings.index_dir / f"{MODEL_ID}.faiss"
    index_file.write_bytes(b"\0" * 100)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/health").json()["templates"] == 3
        assert search(client, sample("obama2.jpg")).json()["candidates"]


def test_a_purge_while_serving_is_never_answered_from_the_old_index(
    client: TestClient, sessions: sessionmaker[Session], gallery_rows: list[dict]
) -> None:
    assert search(client, sample("obama2.jpg")).json()["candidates"]
    with sessions.begin() as session:
        assert purge_record(session, gallery_rows[0]["license_number"])
    assert search(client, sample("obama2.jpg")).json() == {"candidates": []}
    assert client.get("/v1/health").json()["templates"] == 2
