"""The search over HTTP in process, against SQLite and PostgreSQL, under an approved request:
five fields out, every refusal a 4xx."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.api.main import create_app
from app.audit.models import AuditEntry
from app.core.composition import encoder
from app.core.settings import Settings
from app.enrolment.local import purge_record
from app.gallery.release import RELEASED_FIELDS
from matcher import ENGINES, ProbeEncoder
from tests.support.data import sample
from tests.support.gallery import index_file
from tests.support.images import slow_photo
from tests.support.searches import Desk
from tests.support.service import LOOPBACK
from tests.support.staff import Staff

# Search, refusals and the index must hold for every engine.
pytestmark = pytest.mark.parametrize("engine_name", list(ENGINES))

FIVE_FIELDS = {"first_name", "middle_name", "last_name", "date_of_birth", "license_number"}


@pytest.fixture
def searching(settings: Settings) -> Settings:
    return settings.model_copy(update={"authorised_searches": 100})


@pytest.fixture
def desk(
    searching: Settings, sessions: sessionmaker[Session], gallery_rows: list[dict]
) -> Iterator[Desk]:
    with TestClient(create_app(searching), client=LOOPBACK) as client:
        yield Desk(client, Staff.in_process(sessions, searching))


def candidates(response: httpx.Response) -> list[dict]:
    assert response.status_code == 201, response.json()
    return response.json()["candidates"]


def test_a_search_shows_faces_to_compare_and_no_identity_field(
    desk: Desk, gallery_rows: list[dict]
) -> None:
    assert set(RELEASED_FIELDS) == FIVE_FIELDS
    response = desk.search(sample("obama2.jpg"))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"search_id", "request_id", "examiners_required", "candidates"}
    [candidate] = body["candidates"]
    assert set(candidate) == {"rank", "ref", "photos"} and candidate["rank"] == 1
    for field in FIVE_FIELDS - {"middle_name"}:
        assert gallery_rows[0][field] not in response.text, field
    assert "Quillfeather" not in response.text and "987-65-4321" not in response.text


def test_a_stranger_gets_no_candidates(desk: Desk) -> None:
    assert candidates(desk.search(sample("alex-lacamoire.png"))) == []


def test_several_faces_then_the_chosen_box(desk: Desk, gallery_rows: list[dict]) -> None:
    refused = desk.search(sample("two_people.jpg"))
    assert refused.status_code == 422
    body = refused.json()
    assert body["code"] == "multiple_faces" and len(body["faces"]) == 2 and body["message"]
    for face in body["faces"]:
        box = ",".join(str(face[k]) for k in ("left", "top", "right", "bottom"))
        assert desk.search(sample("two_people.jpg"), face_box=box).status_code == 201


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
    desk: Desk, data: bytes, form: dict, status: int, code: str
) -> None:
    response = desk.search(data, **form)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["message"].endswith(".")


def test_no_face(desk: Desk) -> None:
    background = Image.open(io.BytesIO(sample("obama-1080p.jpg"))).crop((0, 600, 500, 1080))
    buffer = io.BytesIO()
    background.save(buffer, "PNG")
    assert desk.search(buffer.getvalue()).json()["code"] == "no_face"


def test_refused_probes_spend_no_search(desk: Desk) -> None:
    for _ in range(3):
        assert desk.search(b"not a photo").status_code == 422
    request = desk.client.get(f"/v1/requests/{desk.request_id}", headers=desk.headers).json()
    assert request["authorisation"]["searches_used"] == 0


def test_probes_past_the_time_limit_are_refused_audited_and_spend_nothing(
    searching: Settings, sessions: sessionmaker[Session], gallery_rows: list[dict]
) -> None:
    """One probe worker, which takes a second or more over each of six slow probes sent at
    once: the first ones are taken up and run out of time, later ones wait out their time
    for the worker."""
    strict = searching.model_copy(
        update={"probe_timeout_s": 0.3, "detect_max_side": 4000, "search_workers": 1}
    )
    photo = slow_photo()
    with TestClient(create_app(strict), client=LOOPBACK) as client:
        assert isinstance(client.app, FastAPI)
        client.app.state.services.probes.warm()
        desk = Desk(client, Staff.in_process(sessions, strict))
        with ThreadPoolExecutor(6) as threads:
            responses = list(threads.map(lambda _: desk.search(photo), range(6)))
        request = client.get(f"/v1/requests/{desk.request_id}", headers=desk.headers).json()
    refusals = Counter((r.status_code, r.json()["code"]) for r in responses)
    assert set(refusals) == {(422, "photo_too_slow"), (429, "face_matcher_busy")}
    slow = next(r for r in responses if r.status_code == 422).json()
    assert "0.3 s" in slow["message"]
    assert next(r for r in responses if r.status_code == 429).headers["Retry-After"] == "5"
    assert request["authorisation"]["searches_used"] == 0
    with sessions() as session:
        outcomes = session.scalars(
            select(AuditEntry.outcome).where(AuditEntry.event_type == "search")
        )
        assert Counter(outcomes) == {f"refused:{code}": n for (_, code), n in refusals.items()}


def test_a_face_matcher_still_starting_is_reported_as_such(
    searching: Settings, sessions: sessionmaker[Session], gallery_rows: list[dict]
) -> None:
    """Probe workers that have not loaded their models within their start-up limit (here
    0 s): a photo is answered 503 with Retry-After, audited, no search spent; a file that is
    no photo is still refused as what it is, needing no worker."""
    with TestClient(create_app(searching), client=LOOPBACK) as client:
        assert isinstance(client.app, FastAPI)
        services = client.app.state.services
        services.probes.close()
        services.probes = ProbeEncoder(
            encoder(searching), 1, searching.probe_timeout_s, start_timeout_s=0
        )
        desk = Desk(client, Staff.in_process(sessions, searching))
        starting = desk.search(sample("obama.jpg"))
        not_a_photo = desk.search(b"not a photo")
        request = client.get(f"/v1/requests/{desk.request_id}", headers=desk.headers).json()
    assert starting.status_code == 503 and starting.json()["code"] == "face_matcher_starting"
    assert starting.headers["Retry-After"] == "10"
    assert not_a_photo.status_code == 422 and not_a_photo.json()["code"] == "unsupported_image"
    assert request["authorisation"]["searches_used"] == 0
    with sessions() as session:
        outcomes = session.scalars(
            select(AuditEntry.outcome).where(AuditEntry.event_type == "search")
        )
        assert sorted(outcomes) == ["refused:face_matcher_starting", "refused:unsupported_image"]


def test_too_large_is_413(
    searching: Settings, sessions: sessionmaker[Session], gallery_rows: list[dict]
) -> None:
    small = searching.model_copy(update={"max_image_bytes": 50_000})
    with TestClient(create_app(small), client=LOOPBACK) as client:
        response = Desk(client, Staff.in_process(sessions, small)).search(sample("obama.jpg"))
    assert response.status_code == 413 and response.json()["code"] == "image_too_large"


def test_missing_probe_and_unknown_routes(desk: Desk) -> None:
    missing = desk.client.post(
        f"/v1/requests/{desk.request_id}/searches", headers=desk.headers, data={"face_box": "1"}
    )
    assert missing.status_code == 422 and missing.json()["code"] == "invalid_request"
    assert desk.client.get("/v1/nothing").json()["code"] == "not_found"
    assert desk.client.get(f"/v1/requests/{desk.request_id}/searches").status_code == 405


def test_the_development_search_route_is_gone(desk: Desk) -> None:
    response = desk.client.post(
        "/v1/searches", headers=desk.headers, files={"probe": ("p.jpg", sample("obama.jpg"))}
    )
    assert response.status_code == 404


def test_health_reports_engine_and_gallery(desk: Desk, searching: Settings) -> None:
    assert desk.client.get("/v1/health").json() == {
        "status": "ok",
        "model_id": searching.engine_spec.model_id,
        "templates": 3,
        "index_revision": 1,
    }


def test_service_rebuilds_a_damaged_index_at_start(
    searching: Settings, sessions: sessionmaker[Session], gallery_rows: list[dict]
) -> None:
    with TestClient(create_app(searching), client=LOOPBACK) as client:
        assert client.get("/v1/health").json()["templates"] == 3
    index_file(searching).write_bytes(b"\0" * 100)
    with TestClient(create_app(searching), client=LOOPBACK) as client:
        assert client.get("/v1/health").json()["templates"] == 3
        assert candidates(
            Desk(client, Staff.in_process(sessions, searching)).search(sample("obama2.jpg"))
        )


def test_a_purge_while_serving_is_never_answered_from_the_old_index(
    desk: Desk, sessions: sessionmaker[Session], gallery_rows: list[dict]
) -> None:
    assert candidates(desk.search(sample("obama2.jpg")))
    with sessions.begin() as session:
        assert purge_record(session, gallery_rows[0]["license_number"])
    assert candidates(desk.search(sample("obama2.jpg"))) == []
    assert desk.client.get("/v1/health").json()["templates"] == 2
