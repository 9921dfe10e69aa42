"""Accounts, the review chain, the gated search, its human review, disclosures and the audit
trail, over the HTTP API in process, against SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, date, datetime, timedelta
from ipaddress import IPv4Network, ip_network
from pathlib import Path

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account
from app.api.main import create_app
from app.audit.models import AuditEntry
from app.audit.retention import Purged, purge
from app.core.composition import StartupRefused, audit_keys, retention_policy
from app.core.settings import Settings
from app.enrolment.local import purge_record
from app.gallery.release import RELEASED_FIELDS
from app.requests.models import AgencyRequest
from app.searches.models import KeptProbe, Search
from auth import Role
from matcher.framing import pixels_only
from matcher.operating_point import load_operating_point, shipped
from tests.support.data import SENTINELS, sample
from tests.support.keys import TEST_KEY
from tests.support.requests import (
    COURT_ORDER,
    COURT_ORDER_DOCUMENT,
    approve,
    request_body,
    review,
    upload_court_order,
)
from tests.support.searches import conclusions, examine
from tests.support.service import LOOPBACK
from tests.support.staff import PASSWORD, Staff


@pytest.fixture
def staff(staff: Staff) -> Staff:
    """The agency, and two more operators: one not assigned, one untrained."""
    staff.add_agency()
    staff.add("otto.operator", Role.operator)
    staff.add("una.untrained", Role.operator, trained=False)
    return staff


def submit(client: TestClient, staff: Staff, **changes: object) -> dict:
    response = client.post(
        "/v1/requests", headers=staff.headers("review-system"), json=request_body(**changes)
    )
    assert response.status_code == 201, response.json()
    return response.json()


def search(
    client: TestClient, headers: dict[str, str], request_id: int, photo: str = "obama2.jpg"
) -> httpx.Response:
    return client.post(
        f"/v1/requests/{request_id}/searches",
        headers=headers,
        files={"probe": ("probe.jpg", sample(photo))},
    )


# Signing in


def test_five_failures_lock_the_account_for_a_while(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session]
) -> None:
    code = pyotp.TOTP(staff.totp["aldo.auditor"]).now()
    wrong = {"username": "aldo.auditor", "password": "not the password", "totp_code": code}
    for _ in range(5):
        assert client.post("/v1/auth/login", json=wrong).json()["code"] == "invalid_credentials"
    right = wrong | {"password": PASSWORD}
    # Locked: the right password gets the same answer as a wrong one, which tells nobody
    # whether the account exists.
    locked = client.post("/v1/auth/login", json=right)
    assert locked.status_code == 401 and locked.json()["code"] == "invalid_credentials"
    with sessions() as session:
        account = session.get_one(Account, staff.ids["aldo.auditor"])
        assert account.locked_until is not None
        assert (
            timedelta(minutes=14)
            < account.locked_until - datetime.now(UTC)
            <= timedelta(minutes=15)
        )
    with sessions.begin() as session:  # fifteen minutes pass
        session.execute(
            update(Account)
            .where(Account.id == staff.ids["aldo.auditor"])
            .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    later = pyotp.TOTP(staff.totp["aldo.auditor"]).at(datetime.now(UTC) + timedelta(seconds=30))
    assert client.post("/v1/auth/login", json=right | {"totp_code": later}).status_code == 200


def test_a_disabled_accounts_tokens_stop_working_and_stay_dead_when_enabled(
    client: TestClient, staff: Staff
) -> None:
    auditor = staff.headers("aldo.auditor")
    assert client.get("/v1/audit/verify", headers=auditor).status_code == 200
    path = f"/v1/accounts/{staff.ids['aldo.auditor']}"
    disabled = client.patch(path, headers=staff.headers("ada.admin"), json={"active": False})
    assert disabled.status_code == 200 and disabled.json()["account"]["active"] is False
    refused = client.get("/v1/audit/verify", headers=auditor)
    assert refused.status_code == 401 and refused.json()["code"] == "account_disabled"
    asked = client.patch(path, headers=staff.headers("ada.admin"), json={"active": True})
    assert asked.status_code == 202
    change = asked.json()["pending_change"]["id"]
    enabled = client.post(
        f"/v1/account-changes/{change}/approve", headers=staff.headers("ben.admin")
    )
    assert enabled.status_code == 200 and enabled.json()["account"]["active"] is True
    stale = client.get("/v1/audit/verify", headers=auditor)
    assert stale.status_code == 401 and stale.json()["code"] == "token_revoked"
    assert client.get("/v1/audit/verify", headers=staff.headers("aldo.auditor")).status_code == 200


def test_systems_sign_in_with_client_credentials(client: TestClient, staff: Staff) -> None:
    secret = staff.secrets["review-system"]
    good = client.post(
        "/v1/auth/token", json={"client_id": "review-system", "client_secret": secret}
    )
    assert good.status_code == 200
    bad = client.post(
        "/v1/auth/token", json={"client_id": "review-system", "client_secret": secret + "x"}
    )
    assert bad.status_code == 401
    # A person's password does not open the client-credentials door, nor the reverse.
    person = client.post(
        "/v1/auth/token", json={"client_id": "aldo.auditor", "client_secret": PASSWORD}
    )
    assert person.status_code == 401


@pytest.mark.parametrize(
    "key",
    [
        None,
        "changeme",
        "secret",
        "short-key",
        "a" * 48,
        "my-super-secret-jwt-key-for-production",
        "replace-this-with-a-long-random-secret-before-deploying-facematch",
        "PLACEHOLDER_JWT_KEY_CHANGE_ME_BEFORE_PRODUCTION_0001",
    ],
)
def test_outside_development_a_missing_or_weak_key_stops_start_up(
    settings: Settings, key: str | None
) -> None:
    with pytest.raises(StartupRefused):
        secret = SecretStr(key) if key is not None else None
        create_app(settings.model_copy(update={"jwt_key": secret, "environment": "production"}))


# Internal only


def test_clients_outside_the_allowed_networks_are_refused(settings: Settings) -> None:
    with TestClient(create_app(settings), client=("203.0.113.9", 4000)) as outsider:
        response = outsider.get("/v1/health")
    assert response.status_code == 403 and response.json()["code"] == "client_not_allowed"
    office = settings.model_copy(update={"allowed_networks": [IPv4Network("203.0.113.0/24")]})
    with TestClient(create_app(office), client=("203.0.113.9", 4000)) as inside:
        assert inside.get("/v1/health").status_code == 200


def test_no_interactive_docs_and_no_cors(client: TestClient, settings: Settings) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404
    preflight = client.options(
        "/v1/health",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    documented = settings.model_copy(update={"api_docs": True})
    with TestClient(create_app(documented), client=LOOPBACK) as docs_client:
        assert docs_client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("setting", "everyone"),
    [
        ("allowed_networks", ["0.0.0.0/0"]),
        ("allowed_networks", ["::/0"]),
        ("allowed_networks", ["0.0.0.0/1", "128.0.0.0/1"]),
        ("trusted_proxies", ["0.0.0.0/0"]),
    ],
)
def test_outside_development_an_allow_list_of_everyone_stops_start_up(
    settings: Settings, setting: str, everyone: list[str]
) -> None:
    wide = settings.model_copy(update={setting: [ip_network(n) for n in everyone]})
    with pytest.raises(StartupRefused, match="every address"):
        create_app(wide)


def test_the_service_binds_to_loopback_by_default() -> None:
    assert Settings(jwt_key=TEST_KEY).host == "127.0.0.1"


# Requests and reviews


def test_screening_rejects_at_submission_and_no_review_can_follow(
    client: TestClient, staff: Staff
) -> None:
    only_immigration = submit(
        client, staff, crime={"category": "narcotics", "statutes": ["8 U.S.C. 1325"]}
    )
    assert only_immigration["status"] == "rejected"
    assert only_immigration["screening"]["rule"] == "3"
    refused = review(client, staff, only_immigration["id"], "sam.staff")
    assert refused.status_code == 409 and refused.json()["code"] == "screening_rejected"
    no_order = submit(client, staff, agency_code="ICE", agency_kind="federal")
    assert (no_order["status"], no_order["screening"]["rule"]) == ("rejected", "4")


def test_the_chain_runs_in_order_once_per_person_and_a_denial_is_final(
    client: TestClient, staff: Staff
) -> None:
    request_id = submit(client, staff)["id"]
    early = review(client, staff, request_id, "mia.manager")
    assert early.status_code == 409 and early.json()["code"] == "not_your_level"
    assert review(client, staff, request_id, "sam.staff").json()["awaiting"] == "manager"
    twice = review(client, staff, request_id, "sam.staff")
    assert twice.status_code == 403 and twice.json()["code"] == "separation_of_duties"
    denied = review(client, staff, request_id, "mia.manager", "deny")
    assert denied.json()["status"] == "denied" and denied.json()["awaiting"] is None
    after = review(client, staff, request_id, "uma.unitadmin")
    assert after.status_code == 409 and after.json()["code"] == "review_closed"


def test_immigration_related_requests_need_director_and_governor_office(
    client: TestClient, staff: Staff
) -> None:
    request = submit(
        client,
        staff,
        agency_code="ICE",
        agency_kind="federal",
        crime={"category": "narcotics", "statutes": ["21 U.S.C. 841", "8 U.S.C. 1326"]},
        legal_process="court_order",
        court_order=COURT_ORDER,
    )
    assert request["status"] == "in_review" and request["screening"]["immigration_related"]
    # The reviewer reads every fact they decide on, the order's document included.
    seen = client.get(f"/v1/requests/{request['id']}", headers=staff.headers("sam.staff")).json()
    assert seen["court_order"] == COURT_ORDER | {"document_on_file": False}
    assert seen["narrative"] == request_body()["narrative"]
    assert (seen["agency_code"], seen["requesting_officer"]) == ("ICE", "Det. R. Alvarez")
    assert seen["citations"] == ["21 U.S.C. § 841", "8 U.S.C. § 1326"]
    early = review(client, staff, request["id"], "sam.staff")
    assert early.status_code == 409 and early.json()["code"] == "court_order_missing"
    system = staff.headers("review-system")
    wrong = upload_court_order(client, system, request["id"], b"%PDF-1.7\nanother order\n")
    assert wrong.status_code == 422 and wrong.json()["code"] == "court_order_mismatch"
    assert upload_court_order(client, system, request["id"]).status_code == 204
    order = client.get(
        f"/v1/requests/{request['id']}/court-order", headers=staff.headers("sam.staff")
    )
    assert order.content == COURT_ORDER_DOCUMENT and order.headers["cache-control"] == "no-store"
    assert order.headers["content-type"] == "application/pdf"
    for who in ("sam.staff", "mia.manager", "uma.unitadmin"):
        after = review(client, staff, request["id"], who).json()
    assert after["status"] == "in_review" and after["awaiting"] == "director"
    assert review(client, staff, request["id"], "dan.director").json()["awaiting"] == (
        "governor_office"
    )
    final = review(client, staff, request["id"], "gail.governor").json()
    assert final["status"] == "approved"
    assert [r["level"] for r in final["reviews"]] == [
        "staff",
        "manager",
        "unit_administrator",
        "director",
        "governor_office",
    ]
    assert final["authorisation"]["searches_allowed"] == 1


def test_the_review_system_passes_on_a_decision_only_beside_the_reviewers_own_token(
    client: TestClient, staff: Staff
) -> None:
    request_id = submit(client, staff)["id"]
    path = f"/v1/requests/{request_id}/reviews"
    body = {"decision": "approve", "reason": "ok"}
    # The system's secret alone decides nothing, for any level, naming anyone or nobody.
    alone = client.post(path, headers=staff.headers("review-system"), json=body)
    assert alone.status_code == 403 and alone.json()["code"] == "forbidden"
    naming = client.post(
        path, headers=staff.headers("review-system"), json=body | {"reviewer": "sam.staff"}
    )
    assert naming.status_code in (403, 422)
    # A reviewer's token without the second factor decides nothing either.
    half = staff.headers("sam.staff", mfa=False) | {
        "X-Calling-System": staff.token("review-system")
    }
    assert client.post(path, headers=half, json=body).json()["code"] == "mfa_required"
    passed_on = client.post(path, headers=staff.on_behalf("sam.staff"), json=body)
    assert passed_on.status_code == 201
    [trail] = passed_on.json()["reviews"]
    assert (trail["reviewer"], trail["via_system"]) == ("sam.staff", "review-system")


def test_only_the_operators_the_unit_administrator_assigned_may_search(
    client: TestClient,
    staff: Staff,
    gallery_rows: list[dict],
) -> None:
    request_id = submit(client, staff)["id"]
    for who in ("sam.staff", "mia.manager"):
        assert review(client, staff, request_id, who).status_code == 201
    path = f"/v1/requests/{request_id}/reviews"
    unit = staff.headers("uma.unitadmin")
    body = {"decision": "approve", "reason": "ok"}
    unnamed = client.post(path, headers=unit, json=body)
    assert unnamed.status_code == 422 and unnamed.json()["code"] == "operators_required"
    not_one = client.post(path, headers=unit, json=body | {"operators": ["aldo.auditor"]})
    assert not_one.status_code == 422 and not_one.json()["code"] == "unknown_operator"
    approved = client.post(path, headers=unit, json=body | {"operators": ["olga.operator"]})
    assert approved.status_code == 201 and approved.json()["assigned_operators"] == [
        "olga.operator"
    ]
    otto = search(client, staff.headers("otto.operator"), request_id)
    assert otto.status_code == 403 and otto.json()["code"] == "not_assigned"
    assert search(client, staff.headers("olga.operator"), request_id).status_code == 201


# The gated search, the decision, the release


@pytest.fixture
def approved(client: TestClient, staff: Staff, gallery_rows: list[dict]) -> int:
    request_id = submit(client, staff)["id"]
    approve(client, staff, request_id)
    return request_id


def test_search_refusals_say_why(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session], approved: int
) -> None:
    olga = staff.headers("olga.operator")
    in_review = submit(client, staff)["id"]
    assert search(client, olga, in_review).json()["code"] == "request_not_approved"
    untrained = search(client, staff.headers("una.untrained"), approved)
    assert untrained.json()["code"] == "training_expired"
    assert (
        search(client, staff.headers("olga.operator", mfa=False), approved).json()["code"]
        == "mfa_required"
    )
    assert search(client, staff.headers("sam.staff"), approved).json()["code"] == "forbidden"
    assert search(client, olga, approved).status_code == 201
    exhausted = search(client, olga, approved)
    assert exhausted.status_code == 403 and exhausted.json()["code"] == "searches_exhausted"
    with sessions.begin() as session:
        session.execute(
            update(AgencyRequest)
            .where(AgencyRequest.id == approved)
            .values(searches_allowed=5, authorised_until=datetime.now(UTC) - timedelta(days=1))
        )
    assert search(client, olga, approved).json()["code"] == "authorisation_expired"
    with sessions() as session:
        refusals = session.scalars(
            select(AuditEntry.outcome).where(AuditEntry.event_type == "search")
        ).all()
    assert "refused:training_expired" in refusals and "refused:searches_exhausted" in refusals


def test_the_review_system_searches_only_beside_an_operators_token(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session], approved: int
) -> None:
    system_token = staff.token("review-system")
    alone = search(client, staff.headers("review-system"), approved)
    assert alone.status_code == 403 and alone.json()["code"] == "forbidden"
    stranger = staff.headers("olga.operator") | {"X-Calling-System": staff.token("aldo.auditor")}
    refused = search(client, stranger, approved)
    assert refused.status_code == 403 and refused.json()["code"] == "unknown_calling_system"
    forged = staff.headers("olga.operator") | {"X-Calling-System": "not-a-token"}
    assert search(client, forged, approved).json()["code"] == "unknown_calling_system"
    both = staff.headers("olga.operator") | {"X-Calling-System": f"Bearer {system_token}"}
    result = search(client, both, approved)
    assert result.status_code == 201
    with sessions() as session:
        recorded = session.get_one(Search, result.json()["search_id"])
        assert recorded.operator_id == staff.ids["olga.operator"]
        assert recorded.via_system_id == staff.ids["review-system"]


def test_searches_use_and_record_the_operating_point_auditors_can_read(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session], approved: int
) -> None:
    shown = client.get("/v1/operating-point", headers=staff.headers("aldo.auditor"))
    assert shown.status_code == 200
    view = shown.json()
    assert isinstance(client.app, FastAPI)
    point_file = shipped(client.app.state.services.settings.engine)
    assert view["sha256"] == hashlib.sha256(point_file.read_bytes()).hexdigest()
    assert view["operating_point"]["threshold"] == load_operating_point(point_file)[0].threshold
    assert view["people_enrolled"] == 3 and view["within_calibrated_gallery"]
    result = search(client, staff.headers("olga.operator"), approved)
    assert result.status_code == 201
    with sessions() as session:
        recorded = session.get_one(Search, result.json()["search_id"])
        assert recorded.operating_point_sha256 == view["sha256"]
        assert recorded.threshold == view["operating_point"]["threshold"]
        assert recorded.margin == view["margin"]


def test_candidates_are_faces_until_the_examination_identifies_one(
    client: TestClient,
    staff: Staff,
    sessions: sessionmaker[Session],
    approved: int,
    gallery_rows: list[dict],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    olga, otto = staff.headers("olga.operator"), staff.headers("otto.operator")
    answered = search(client, olga, approved)
    found = answered.json()
    [candidate] = found["candidates"]
    assert set(candidate) == {"rank", "ref", "photos"} and candidate["photos"] == 1
    obama = gallery_rows[0]
    for value in (obama["license_number"], obama["last_name"], obama["date_of_birth"]):
        assert value not in answered.text
    at = f"/v1/searches/{found['search_id']}"
    photo = f"{at}/candidates/{candidate['ref']}/photos/1"

    # The photo that matched, from the photo store, for the operator who searched only.
    shown = client.get(photo, headers=olga)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert shown.headers["cache-control"] == "no-store"
    assert shown.content == pixels_only(sample("obama.jpg"))
    assert client.get(f"{at}/probe", headers=olga).content == pixels_only(sample("obama2.jpg"))
    for path in (photo, f"{at}/probe", at):
        refused = client.get(path, headers=otto)
        assert refused.status_code == 403 and refused.json()["code"] == "not_search_operator"
    assert client.get(photo, headers=staff.headers("aldo.auditor")).status_code == 403
    assert (
        client.get(f"{at}/candidates/{candidate['ref']}/photos/2", headers=olga).json()["code"]
        == "no_such_photo"
    )
    wrong_ref = client.get(f"{at}/candidates/not-a-ref/photos/1", headers=olga)
    assert wrong_ref.status_code == 422 and wrong_ref.json()["code"] == "no_such_candidate"

    # A conclusion on every candidate, with its basis, before anything is released.
    examination = f"{at}/examination"
    incomplete = client.post(examination, headers=olga, json={"conclusions": []})
    assert incomplete.status_code == 422 and incomplete.json()["code"] == "conclusions_incomplete"
    no_basis = conclusions(found)
    no_basis["conclusions"][0]["basis"] = " "
    assert client.post(examination, headers=olga, json=no_basis).status_code == 422
    assert examine(client, otto, found).json()["code"] == "not_search_operator"
    confirmed = examine(client, olga, found)
    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json()["decision"] == "confirmed"
    release = confirmed.json()["release"]
    assert set(release) == set(RELEASED_FIELDS)
    assert release["license_number"] == obama["license_number"]
    again = examine(client, olga, found)
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    once = client.post(f"{at}/release", headers=olga)
    assert once.status_code == 409 and once.json()["code"] == "release_already_shown"

    # Decided: no photo answers anyone, the probe is gone and its SHA-256 stays.
    for path in (photo, f"{at}/probe"):
        assert client.get(path, headers=olga).json()["code"] == "already_decided"
    with sessions() as session:
        assert session.get(KeptProbe, found["search_id"]) is None
        kept = session.get_one(Search, found["search_id"])
        assert kept.probe_sha256 == hashlib.sha256(sample("obama2.jpg")).hexdigest()
    assert client.get(at, headers=olga).json()["decision"] == "confirmed"

    lookup = client.get(
        "/v1/disclosures",
        params={"license_number": obama["license_number"].lower()},
        headers=staff.headers("rita.records"),
    ).json()["disclosures"]
    assert [(d["request_id"], d["agency_name"]) for d in lookup] == [
        (approved, "Olympia Police Department")
    ]
    nobody = client.get(
        "/v1/disclosures",
        params={"license_number": gallery_rows[1]["license_number"]},
        headers=staff.headers("aldo.auditor"),
    )
    assert nobody.json() == {"disclosures": []}

    # Identifiers only: no identity field of anyone in the audit log or the application log.
    with sessions() as session:
        rows = session.execute(text("SELECT * FROM audit_log")).all()
    service_log = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    written = " ".join([*(str(value) for row in rows for value in row), *service_log])
    for row in gallery_rows:
        for field in ("first_name", "last_name", "license_number", "date_of_birth"):
            assert row[field] not in written, field
    for sentinel in SENTINELS.values():
        assert sentinel not in written


def test_a_candidate_purged_before_the_examination_is_not_released(
    client: TestClient,
    staff: Staff,
    sessions: sessionmaker[Session],
    approved: int,
    gallery_rows: list[dict],
) -> None:
    olga = staff.headers("olga.operator")
    found = search(client, olga, approved).json()
    with sessions.begin() as session:
        purge_record(session, gallery_rows[0]["license_number"])
    ref = found["candidates"][0]["ref"]
    photo = client.get(f"/v1/searches/{found['search_id']}/candidates/{ref}/photos/1", headers=olga)
    assert photo.status_code == 409 and photo.json()["code"] == "record_purged"
    decided = examine(client, olga, found)
    assert decided.status_code == 409 and decided.json()["code"] == "record_purged"


def test_a_photo_missing_or_changed_in_the_store_is_refused_never_shown(
    client: TestClient,
    staff: Staff,
    sessions: sessionmaker[Session],
    settings: Settings,
    approved: int,
    gallery_rows: list[dict],
    tmp_path: Path,
) -> None:
    olga = staff.headers("olga.operator")
    found = search(client, olga, approved).json()
    photo = f"/v1/searches/{found['search_id']}/candidates/{found['candidates'][0]['ref']}/photos/1"
    services = client.app.state.services  # type: ignore[attr-defined]
    store = tmp_path / "store"
    (store / "samples").mkdir(parents=True)
    for expected, setup in (
        ("no_photo_store", lambda: None),
        ("photo_missing", lambda: store),
        ("photo_changed", lambda: store),
    ):
        if expected == "photo_changed":
            (store / "samples" / "obama.jpg").write_bytes(sample("biden.jpg"))
        services.settings = settings.model_copy(update={"photo_store": setup()})
        refused = client.get(photo, headers=olga)
        assert refused.status_code == 409 and refused.json()["code"] == expected
    # An insider who deletes the kept probe leaves nothing to show, and says so.
    with sessions.begin() as session:
        session.execute(delete(KeptProbe))
    gone = client.get(f"/v1/searches/{found['search_id']}/probe", headers=olga)
    assert gone.status_code == 409 and gone.json()["code"] == "probe_not_kept"


def test_retention_deletes_candidate_lists_then_probe_hashes_and_the_log_still_verifies(
    client: TestClient,
    staff: Staff,
    settings: Settings,
    sessions: sessionmaker[Session],
    approved: int,
) -> None:
    olga = staff.headers("olga.operator")
    found = search(client, olga, approved).json()
    assert found["candidates"]

    def purged_after(days: int) -> Purged:
        with sessions.begin() as session:
            searched = session.get_one(Search, found["search_id"]).searched_at
            later = searched + timedelta(days=days, seconds=1)
            return purge(
                session, retention_policy(settings), audit_keys(settings), later, "cli:ada"
            )

    assert purged_after(settings.candidate_retention_days - 1).candidate_lists == 0
    assert purged_after(settings.candidate_retention_days).candidate_lists == 1
    with sessions() as session:
        kept = session.get_one(Search, found["search_id"])
        assert kept.candidates == [] and kept.candidates_purged_at is not None
        assert kept.probe_sha256 == hashlib.sha256(sample("obama2.jpg")).hexdigest()
    with sessions() as session:
        assert session.get(KeptProbe, found["search_id"]) is None
    decided = examine(client, olga, found)
    assert decided.status_code == 409 and decided.json()["code"] == "candidates_purged"

    # A year on, the probe hash and every audit entry so far go; the log verifies from the
    # purge's checkpoint, over the API, with the service's own keys.
    later = purged_after(settings.audit_retention_days)
    assert later.probe_hashes == 1 and later.audit_entries > 0
    with sessions() as session:
        assert session.get_one(Search, found["search_id"]).probe_sha256 is None
    verified = client.get("/v1/audit/verify", headers=staff.headers("aldo.auditor")).json()
    assert verified["intact"], verified


def test_excluding_every_candidate_releases_nothing(
    client: TestClient, staff: Staff, approved: int
) -> None:
    olga = staff.headers("olga.operator")
    found = search(client, olga, approved).json()
    decided = examine(client, olga, found, identify=None)
    assert decided.json() == {"search_id": found["search_id"], "decision": "none", "release": None}


@pytest.mark.parametrize("verifier_identifies", [1, None])
def test_with_two_examiners_only_the_same_identification_by_both_releases(
    client: TestClient,
    staff: Staff,
    sessions: sessionmaker[Session],
    settings: Settings,
    approved: int,
    gallery_rows: list[dict],
    verifier_identifies: int | None,
) -> None:
    staff.add("vera.verifier", Role.operator)
    services = client.app.state.services  # type: ignore[attr-defined]
    services.settings = settings.model_copy(update={"examiners": 2})
    olga, otto = staff.headers("olga.operator"), staff.headers("otto.operator")
    system = staff.token("review-system")
    found = search(client, olga | {"X-Calling-System": system}, approved).json()
    assert found["examiners_required"] == 2
    at = f"/v1/searches/{found['search_id']}"
    photo = f"{at}/candidates/{found['candidates'][0]['ref']}/photos/1"
    outcome = client.get(f"{at}/outcome", headers=staff.headers("review-system"))
    assert outcome.status_code == 409 and outcome.json()["code"] == "search_undecided"

    # A second trained operator takes it on; never the one who searched, nor the untrained.
    assert client.get(photo, headers=otto).status_code == 403
    queue = client.get("/v1/searches/verification", headers=otto).json()
    assert queue == {"searches": [found["search_id"]]}
    assert client.get("/v1/searches/verification", headers=olga).json() == {"searches": []}
    own = client.post(f"{at}/verification", headers=olga)
    assert own.status_code == 403 and own.json()["code"] == "separation_of_duties"
    untrained = client.post(f"{at}/verification", headers=staff.headers("una.untrained"))
    assert untrained.json()["code"] == "training_expired"
    taken = client.post(f"{at}/verification", headers=otto)
    assert taken.status_code == 200 and taken.json()["examiner"] == "verifier"
    second = client.post(f"{at}/verification", headers=staff.headers("vera.verifier"))
    assert second.status_code == 409 and second.json()["code"] == "verifier_taken"
    assert client.get(photo, headers=otto).content == pixels_only(sample("obama.jpg"))

    # Blind: the first examiner's conclusions are nowhere in what the verifier sees.
    first = examine(client, olga, found)
    assert first.json() == {"search_id": found["search_id"], "decision": None, "release": None}
    # Having concluded, the first examiner has no more need of the photos.
    assert client.get(photo, headers=olga).json()["code"] == "already_examined"
    seen = client.get(at, headers=otto)
    assert seen.json()["examined"] is False and "identification" not in seen.text
    assert client.post(f"{at}/release", headers=olga).json()["code"] == "search_undecided"

    verified = examine(client, otto, found, identify=verifier_identifies)
    decision = "confirmed" if verifier_identifies else "disagreement"
    assert verified.json() == {
        "search_id": found["search_id"],
        "decision": decision,
        "release": None,
    }
    shown = client.post(f"{at}/release", headers=olga)
    told = client.get(f"{at}/outcome", headers=staff.headers("review-system")).json()
    assert told["decision"] == decision
    if verifier_identifies:
        assert shown.json()["license_number"] == gallery_rows[0]["license_number"]
        assert told["release"] == shown.json()
        again = client.post(f"{at}/release", headers=olga)
        assert again.status_code == 409 and again.json()["code"] == "release_already_shown"
    else:
        assert shown.status_code == 404 and shown.json()["code"] == "no_release"
        assert told["release"] is None
    assert client.post(f"{at}/release", headers=otto).json()["code"] == "not_search_operator"
    today = date.today()
    report = client.get(
        "/v1/reports/transparency",
        params={"from": str(today), "to": str(today + timedelta(days=1))},
        headers=staff.headers("aldo.auditor"),
    ).json()
    assert report["conclusions"] == {
        "identifications": 2 if verifier_identifies else 1,
        "exclusions": 0 if verifier_identifies else 1,
        "inconclusives": 0,
        "disagreements": 0 if verifier_identifies else 1,
    }
    assert report["releases"] == (1 if verifier_identifies else 0)


def test_the_transparency_report_counts_what_happened(
    client: TestClient, staff: Staff, approved: int
) -> None:
    submit(client, staff, crime={"category": "narcotics", "statutes": ["8 U.S.C. 1325"]})
    submit(client, staff, agency_code="ICE", agency_kind="federal")
    denied = submit(client, staff)["id"]
    review(client, staff, denied, "sam.staff", "deny")
    olga = staff.headers("olga.operator")
    found = search(client, olga, approved).json()
    examine(client, olga, found)
    today = date.today()
    report = client.get(
        "/v1/reports/transparency",
        params={"from": str(today), "to": str(today + timedelta(days=1))},
        headers=staff.headers("aldo.auditor"),
    ).json()
    assert report["requests"] == 4
    assert report["by_agency_kind"] == {"local": 3, "federal": 1}
    assert report["immigration_related"] == 2 and report["court_order_present"] == 0
    assert report["screening"] == {"passed": 2, "rejected": 2, "rejected_by_rule": {"3": 1, "4": 1}}
    assert report["reviews"] == {"approved": 1, "denied": 1, "in_review": 0}
    assert report["approval_rate"] == 0.25
    assert (report["searches"], report["confirmations"], report["releases"]) == (1, 1, 1)
    assert report["conclusions"] == {
        "identifications": 1,
        "exclusions": 0,
        "inconclusives": 0,
        "disagreements": 0,
    }
    assert report["forwarded_to_governor_office"] == 0
    bad = client.get(
        "/v1/reports/transparency",
        params={"from": str(today), "to": str(today)},
        headers=staff.headers("aldo.auditor"),
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_period"


def test_every_event_is_in_the_audit_log_and_the_chain_verifies(
    client: TestClient, staff: Staff, approved: int
) -> None:
    olga = staff.headers("olga.operator")
    found = search(client, olga, approved).json()
    client.get(f"/v1/searches/{found['search_id']}/probe", headers=olga)
    examine(client, olga, found)
    auditor = staff.headers("aldo.auditor")
    entries = client.get("/v1/audit", params={"limit": 1000}, headers=auditor).json()
    # Each step of the request's way, in order, by whom it was taken, on what, and how it
    # ended: the log is the account of what happened, not just a list of event names.
    actor = {name: f"account:{ident}" for name, ident in staff.ids.items()}
    request, searched = f"request:{approved}", f"search:{found['search_id']}"
    assert [(e["event_type"], e["actor"], e["object_id"], e["outcome"]) for e in entries] == [
        ("request.submit", actor["review-system"], request, "success"),
        ("request.review", actor["sam.staff"], request, "approve"),
        ("request.review", actor["mia.manager"], request, "approve"),
        ("request.review", actor["uma.unitadmin"], request, "approve"),
        ("search", actor["olga.operator"], searched, "success"),
        ("search.probe", actor["olga.operator"], searched, "success"),
        ("search.decision", actor["olga.operator"], searched, "confirmed"),
    ]
    assert entries[6]["details"]["identifications"] == 1
    assert entries[4]["details"]["request"] == request
    assert entries[3]["details"]["operators"] == actor["olga.operator"]
    verified = client.get("/v1/audit/verify", headers=auditor).json()
    # The listing is an entry of its own; no anchor has been taken yet.
    assert verified == {
        "intact": True,
        "entries": len(entries) + 1,
        "first_bad_seq": None,
        "problem": None,
        "anchored_seq": None,
    }

    # Narrowed by event, actor, object and time (a time without a zone is UTC).
    def narrowed(**query: str) -> list[str | None]:
        found = client.get("/v1/audit", params=query, headers=auditor).json()
        return [e["object_id"] for e in found]

    assert narrowed(event_type="search.decision", since="2000-01-01T00:00:00") == [searched]
    assert narrowed(actor=actor["olga.operator"], object_id=request) == []
    assert narrowed(actor=actor["olga.operator"], until="2000-01-01T00:00:00") == []
    assert len(narrowed(object_id=request)) == 4
    for hostile in ("account:7\x00", "account:\u00e9", "x" * 200):
        refused = client.get("/v1/audit", params={"actor": hostile}, headers=auditor)
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_request"
