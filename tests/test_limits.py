"""Per-account rate limits on sign-ins and searches, and the request body limit: each a 4xx
or 429 with its code, refused before the work it guards (a password hash, a face encoding)."""

from __future__ import annotations

import json

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account
from app.api.main import create_app
from app.audit.models import AuditEntry
from app.core.settings import Settings
from app.requests.models import AgencyRequest
from auth import Role
from tests.support.data import sample
from tests.support.requests import approve, request_body
from tests.support.service import LOOPBACK
from tests.support.staff import PASSWORD, Staff


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Limits low enough to reach in a test."""
    return settings.model_copy(
        update={
            "login_rate_limit": "3/minute",
            "search_rate_limit": "2/minute",
            "authorised_searches": 5,
        }
    )


def outcomes(sessions: sessionmaker[Session], event: str) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry.outcome)
                .where(AuditEntry.event_type == event)
                .order_by(AuditEntry.seq)
            )
        )


def test_sign_ins_over_the_rate_are_refused_before_the_password_is_checked(
    client: TestClient, sessions: sessionmaker[Session], staff: Staff
) -> None:
    staff.add("ada.admin", Role.admin)
    staff.add("bea.admin", Role.admin)
    wrong = {"username": "ada.admin", "password": "not the password"}
    for _ in range(3):
        assert client.post("/v1/auth/login", json=wrong).json()["code"] == "invalid_credentials"
    right = {"username": "ada.admin", "password": PASSWORD}
    throttled = client.post("/v1/auth/login", json=right)
    assert throttled.status_code == 429 and throttled.json()["code"] == "too_many_attempts"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    # A name with no account is limited the same way, so the limit reveals nothing.
    for _ in range(3):
        client.post("/v1/auth/login", json={"username": "nobody", "password": "x" * 12})
    assert (
        client.post("/v1/auth/login", json={"username": "nobody", "password": "x" * 12}).status_code
        == 429
    )
    # Another account is not held back, and the throttled attempt did not count as a failure.
    code = pyotp.TOTP(staff.totp["bea.admin"]).now()
    other = client.post(
        "/v1/auth/login",
        json={"username": "bea.admin", "password": PASSWORD, "totp_code": code},
    )
    assert other.status_code == 200
    with sessions() as session:
        assert session.get_one(Account, staff.ids["ada.admin"]).failed_logins == 3
    assert outcomes(sessions, "login")[3] == "refused:too_many_attempts"


def test_searches_over_the_rate_are_refused_before_the_photo_is_read(
    client: TestClient, sessions: sessionmaker[Session], staff: Staff
) -> None:
    staff.add("rita.records", Role.records_clerk)
    staff.add("olga.operator", Role.operator)
    staff.add("otto.operator", Role.operator)
    staff.add_reviewers()
    request_id = client.post(
        "/v1/requests", headers=staff.headers("rita.records"), json=request_body()
    ).json()["id"]
    approve(client, staff, request_id, operators=("olga.operator", "otto.operator"))
    path = f"/v1/requests/{request_id}/searches"
    junk = {"probe": ("probe", b"not a photo")}
    for _ in range(2):  # refused attempts count too: a flood is a flood
        refused = client.post(path, headers=staff.headers("olga.operator"), files=junk)
        assert refused.json()["code"] == "unsupported_image"
    photo = {"probe": ("probe", sample("obama_small.jpg"))}
    throttled = client.post(path, headers=staff.headers("olga.operator"), files=photo)
    assert throttled.status_code == 429 and throttled.json()["code"] == "too_many_searches"
    assert int(throttled.headers["Retry-After"]) >= 1
    with sessions() as session:
        assert session.get_one(AgencyRequest, request_id).searches_used == 0
    assert outcomes(sessions, "search")[-1] == "refused:too_many_searches"
    # The limit is the account's: another operator searches.
    assert client.post(path, headers=staff.headers("otto.operator"), files=photo).status_code == 201


def test_a_body_over_the_limit_is_refused_declared_or_streamed(
    sessions: sessionmaker[Session], settings: Settings, staff: Staff
) -> None:
    small = settings.model_copy(update={"max_request_bytes": 4096})
    with TestClient(create_app(small), client=LOOPBACK) as client:
        staff.add("rita.records", Role.records_clerk)
        headers = staff.headers("rita.records") | {"Content-Type": "application/json"}
        body = request_body(narrative="x" * 8000)
        data = json.dumps(body).encode()
        declared = client.post("/v1/requests", headers=headers, content=data)
        streamed = client.post(
            "/v1/requests", headers=headers, content=iter([data[:3000], data[3000:]])
        )
        for response in (declared, streamed):
            assert response.status_code == 413 and response.json()["code"] == "request_too_large"
        with sessions() as session:
            assert session.scalar(select(AgencyRequest.id)) is None


def test_text_a_database_cannot_store_is_refused_as_invalid(
    client: TestClient, sessions: sessionmaker[Session], staff: Staff
) -> None:
    """Found by the fuzzing: PostgreSQL's text holds no NUL character (SQLite's does), so
    every body refuses NULs, and unpaired surrogates, as invalid on both."""
    staff.add("rita.records", Role.records_clerk)
    login = client.post("/v1/auth/login", json={"username": "a\u0000b", "password": "x" * 12})
    assert login.status_code == 422 and login.json()["code"] == "invalid_request"
    body = json.dumps(request_body(narrative="a \u0000 b"))
    submitted = client.post(
        "/v1/requests",
        headers=staff.headers("rita.records") | {"Content-Type": "application/json"},
        content=body.replace("a \\u0000 b", "a \\ud800 b"),
    )
    assert submitted.status_code == 422 and submitted.json()["code"] == "invalid_request"
    with sessions() as session:
        assert session.scalar(select(AgencyRequest.id)) is None


def test_numbers_past_64_bits_are_refused_as_invalid(
    client: TestClient, sessions: sessionmaker[Session], staff: Staff
) -> None:
    """Found by the fuzzing: a number no database column holds, in a path or a query."""
    staff.add("aldo.auditor", Role.auditor)
    auditor = staff.headers("aldo.auditor")
    for path, params in (("/v1/audit", {"after": 2**63}), (f"/v1/requests/{2**63}", {})):
        refused = client.get(path, params=params, headers=auditor)
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_request", path
    assert client.get("/v1/audit", params={"after": 2**63 - 1}, headers=auditor).json() == []
