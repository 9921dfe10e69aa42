"""Accounts as the agency runs them: nobody learns another person's password or second factor,
what confers power takes two administrators, and a sign-in says nothing of who exists."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account
from app.core.settings import Settings
from auth import Role
from tests.governance import PASSWORD, Staff, add_reviewers, approve, request_body

NEW_PASSWORD = "quartz lantern meadow 91"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Sign-ins are counted per username: the rate limit is not what most of these try."""
    return settings.model_copy(update={"login_rate_limit": "1000/minute"})


@pytest.fixture
def staff(sessions: sessionmaker[Session], settings: Settings) -> Staff:
    staff = Staff(sessions, settings)
    staff.add("ada.admin", Role.admin)
    staff.add("ben.admin", Role.admin)
    return staff


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def activate(client: TestClient, username: str, code: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/auth/activate",
        json={"username": username, "activation_code": code, "password": password},
    )


def second_factor(client: TestClient, token: str) -> pyotp.TOTP:
    uri = client.post("/v1/auth/totp", headers=bearer(token)).json()["otpauth_uri"]
    totp = pyotp.parse_uri(uri)
    confirmed = client.post(
        "/v1/auth/totp/confirm", headers=bearer(token), json={"code": totp.now()}
    )
    assert confirmed.status_code == 204
    return totp


def sign_in(client: TestClient, username: str, totp: pyotp.TOTP, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    code = totp.at(datetime.now(UTC) + timedelta(seconds=30))
    return client.post(
        "/v1/auth/login", json={"username": username, "password": password, "totp_code": code}
    )


def test_a_person_sets_their_own_password_and_second_factor_with_a_one_time_code(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # The administrator never chooses, sees or sets a password: the body has no such field.
    chosen = client.post(
        "/v1/accounts",
        headers=staff.headers("ada.admin"),
        json={"username": "nia.new", "role": "auditor", "password": PASSWORD},
    )
    assert chosen.status_code == 422 and chosen.json()["code"] == "invalid_request"
    created = client.post(
        "/v1/accounts",
        headers=staff.headers("ada.admin"),
        json={"username": "nia.new", "role": "auditor"},
    )
    assert created.status_code == 201
    outcome = created.json()
    assert outcome["account"]["awaiting_activation"] and not outcome["account"]["totp_active"]
    code = outcome["credentials"]["activation_code"]
    expires = datetime.fromisoformat(outcome["credentials"]["activation_expires_at"])
    assert timedelta(hours=71) < expires - datetime.now(UTC) <= timedelta(hours=72)
    # No password works before activation, not even an empty one.
    never = client.post("/v1/auth/login", json={"username": "nia.new", "password": ""})
    assert never.status_code == 401

    for weak in ("short", "password1234", "nia.new is here", "aaaaaaaaaaaaaaaa"):
        refused = activate(client, "nia.new", code, weak)
        assert refused.status_code == 422 and refused.json()["code"] == "weak_password", weak
    wrong = activate(client, "nia.new", "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_activation"
    first = activate(client, "nia.new", code.lower().replace("-", " "))
    assert first.status_code == 200 and first.json()["mfa"] is False
    token = first.json()["access_token"]
    # A token made without the second factor does nothing but finish activation.
    assert client.get("/v1/audit/verify", headers=bearer(token)).json()["code"] == "mfa_required"
    totp = second_factor(client, token)
    signed_in = sign_in(client, "nia.new", totp)
    assert signed_in.status_code == 200 and signed_in.json()["mfa"] is True
    assert (
        client.get("/v1/audit/verify", headers=bearer(signed_in.json()["access_token"])).status_code
        == 200
    )
    # The code was used once; it is gone.
    assert activate(client, "nia.new", code).json()["code"] == "invalid_activation"

    # The seed is sealed at rest: neither the row nor the database file holds it.
    with sessions() as session:
        account = session.get_one(Account, outcome["account"]["id"])
    assert account.totp_seed is not None and totp.secret.encode() not in account.totp_seed
    database = Path(settings.sqlalchemy_url.removeprefix("sqlite:///"))
    if database.is_file():
        assert totp.secret.encode() not in database.read_bytes()


def test_an_activation_code_stops_working_when_it_expires(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session]
) -> None:
    created = client.post(
        "/v1/accounts",
        headers=staff.headers("ada.admin"),
        json={"username": "nia.new", "role": "auditor"},
    ).json()
    with sessions.begin() as session:
        session.execute(
            update(Account)
            .where(Account.id == created["account"]["id"])
            .values(activation_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    late = activate(client, "nia.new", created["credentials"]["activation_code"])
    assert late.status_code == 401 and late.json()["code"] == "invalid_activation"


def test_one_administrator_alone_cannot_make_an_operator_who_searches(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """The attack: one administrator makes a review system and an operator, trains the
    operator, and searches. Every step that confers power waits for a second administrator."""
    ada, ben = staff.headers("ada.admin"), staff.headers("ben.admin")
    system = client.post(
        "/v1/accounts", headers=ada, json={"username": "ghost-system", "role": "review_system"}
    )
    assert system.status_code == 202 and system.json()["credentials"] is None
    operator = client.post(
        "/v1/accounts", headers=ada, json={"username": "oli.operator", "role": "operator"}
    )
    assert operator.status_code == 202 and operator.json()["account"] is None
    change = operator.json()["pending_change"]
    assert (change["status"], change["role"], change["username"]) == (
        "pending",
        "operator",
        "oli.operator",
    )
    own = client.post(f"/v1/account-changes/{change['id']}/approve", headers=ada)
    assert own.status_code == 403 and own.json()["code"] == "own_change"
    # Nothing took effect: there is no such account to sign in as.
    listed = client.get("/v1/accounts", headers=ada).json()
    assert "oli.operator" not in {a["username"] for a in listed}

    approved = client.post(f"/v1/account-changes/{change['id']}/approve", headers=ben)
    assert approved.status_code == 200
    operator_id = approved.json()["account"]["id"]
    code = approved.json()["credentials"]["activation_code"]
    twice = client.post(f"/v1/account-changes/{change['id']}/approve", headers=ben)
    assert twice.status_code == 409 and twice.json()["code"] == "change_closed"

    today = date.today()
    course = {
        "course": settings.operator_course,
        "completed_on": str(today - timedelta(days=1)),
        "expires_on": str(today + timedelta(days=364)),
    }
    training = client.post(f"/v1/accounts/{operator_id}/training", headers=ada, json=course)
    assert training.status_code == 202 and training.json()["training"] is None
    token = activate(client, "oli.operator", code).json()["access_token"]
    oli = bearer(
        sign_in(client, "oli.operator", second_factor(client, token)).json()["access_token"]
    )
    staff.add("rita.records", Role.records_clerk)
    add_reviewers(staff)
    request_id = client.post(
        "/v1/requests", headers=staff.headers("rita.records"), json=request_body()
    ).json()["id"]
    approve(client, staff, request_id, operators=("oli.operator",))
    probe = {"probe": ("probe.jpg", b"not yet read")}
    untrained = client.post(f"/v1/requests/{request_id}/searches", headers=oli, files=probe)
    assert untrained.status_code == 403 and untrained.json()["code"] == "training_expired"
    done = client.post(
        f"/v1/account-changes/{training.json()['pending_change']['id']}/approve", headers=ben
    )
    assert done.status_code == 200 and done.json()["training"]["course"] == settings.operator_course
    trained = client.post(f"/v1/requests/{request_id}/searches", headers=oli, files=probe)
    assert trained.json()["code"] == "unsupported_image"  # past every gate: now the photo is read


def test_training_records_must_be_possible(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    auditor = staff.add("aldo.auditor", Role.auditor)
    today = date.today()
    path = f"/v1/accounts/{auditor}/training"
    for completed, expires in (
        (today + timedelta(days=1), today + timedelta(days=300)),
        (today - timedelta(days=10), today + timedelta(days=settings.training_max_validity_days)),
        (today, today - timedelta(days=1)),
    ):
        body = {"course": "privacy", "completed_on": str(completed), "expires_on": str(expires)}
        refused = client.post(path, headers=staff.headers("ada.admin"), json=body)
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_training", body
    fine = {
        "course": "privacy",
        "completed_on": str(today),
        "expires_on": str(today + timedelta(days=365)),
    }
    assert client.post(path, headers=staff.headers("ada.admin"), json=fine).status_code == 201


def test_re_enabling_or_resetting_a_powerful_account_waits_for_a_second_administrator(
    client: TestClient, staff: Staff
) -> None:
    operator = staff.add("olga.operator", Role.operator)
    ada, ben = staff.headers("ada.admin"), staff.headers("ben.admin")
    old = staff.headers("olga.operator")
    assert (
        client.patch(f"/v1/accounts/{operator}", headers=ada, json={"active": False}).status_code
        == 200
    )
    enable = client.patch(f"/v1/accounts/{operator}", headers=ada, json={"active": True})
    assert enable.status_code == 202
    reset = client.post(f"/v1/accounts/{operator}/reset", headers=ada)
    assert reset.status_code == 202 and reset.json()["credentials"] is None
    for pending in (enable, reset):
        decided = client.post(
            f"/v1/account-changes/{pending.json()['pending_change']['id']}/approve", headers=ben
        )
        assert decided.status_code == 200
    assert decided.json()["credentials"]["activation_code"]
    # The reset ended the old password and every token made before it.
    assert client.get("/v1/requests/1", headers=old).json()["code"] == "token_revoked"
    login = {
        "username": "olga.operator",
        "password": PASSWORD,
        "totp_code": pyotp.TOTP(staff.totp["olga.operator"]).now(),
    }
    assert client.post("/v1/auth/login", json=login).json()["code"] == "invalid_credentials"
    pending = client.get("/v1/account-changes", params={"status": "pending"}, headers=ada).json()
    assert pending == []


def test_a_reset_of_an_ordinary_account_ends_its_sessions_and_issues_a_new_code(
    client: TestClient, staff: Staff
) -> None:
    auditor = staff.add("aldo.auditor", Role.auditor)
    old = staff.headers("aldo.auditor")
    reset = client.post(f"/v1/accounts/{auditor}/reset", headers=staff.headers("ada.admin"))
    assert reset.status_code == 200 and reset.json()["account"]["awaiting_activation"]
    assert client.get("/v1/audit/verify", headers=old).json()["code"] == "token_revoked"
    token = activate(client, "aldo.auditor", reset.json()["credentials"]["activation_code"]).json()
    assert token["mfa"] is False


def test_a_person_changes_their_own_password_and_their_old_tokens_end(
    client: TestClient, staff: Staff
) -> None:
    staff.add("aldo.auditor", Role.auditor)
    old = staff.headers("aldo.auditor")
    body = {"current_password": PASSWORD, "new_password": "password1234"}
    weak = client.post("/v1/auth/password", headers=old, json=body)
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    not_theirs = client.post(
        "/v1/auth/password",
        headers=old,
        json=body | {"current_password": "guess", "new_password": NEW_PASSWORD},
    )
    assert not_theirs.status_code == 422 and not_theirs.json()["code"] == "wrong_password"
    changed = client.post(
        "/v1/auth/password", headers=old, json=body | {"new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 204
    assert client.get("/v1/audit/verify", headers=old).json()["code"] == "token_revoked"
    totp = pyotp.TOTP(staff.totp["aldo.auditor"])
    assert sign_in(client, "aldo.auditor", totp).json()["code"] == "invalid_credentials"
    assert sign_in(client, "aldo.auditor", totp, NEW_PASSWORD).status_code == 200


def median_seconds(call, times: int = 5) -> float:  # type: ignore[no-untyped-def]
    durations = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def test_an_unknown_username_and_a_real_one_get_the_same_answers_and_take_as_long(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session]
) -> None:
    """Every sign-in and activation answer is the same for an account that exists and one
    that does not: wrong password, locked, not activated; and each hashes a password."""
    staff.add("aldo.auditor", Role.auditor)
    created = client.post(
        "/v1/accounts",
        headers=staff.headers("ada.admin"),
        json={"username": "nia.new", "role": "auditor"},
    ).json()

    def answer(body: dict[str, str], path: str = "/v1/auth/login") -> tuple[int, str, str]:
        response = client.post(path, json=body)
        return response.status_code, response.json()["code"], response.json()["message"]

    unknown = answer({"username": "no.such.person", "password": PASSWORD, "totp_code": "123456"})
    assert (
        answer({"username": "aldo.auditor", "password": "wrong", "totp_code": "123456"}) == unknown
    )
    assert answer({"username": "nia.new", "password": PASSWORD}) == unknown  # not yet activated
    activation = {"activation_code": "AAAA-BBBB", "password": NEW_PASSWORD}
    assert answer({"username": "nia.new"} | activation, "/v1/auth/activate") == answer(
        {"username": "no.such.person"} | activation, "/v1/auth/activate"
    )
    with sessions.begin() as session:
        session.execute(
            update(Account)
            .where(Account.username == "aldo.auditor")
            .values(locked_until=datetime.now(UTC) + timedelta(minutes=15))
        )
    right = {
        "username": "aldo.auditor",
        "password": PASSWORD,
        "totp_code": pyotp.TOTP(staff.totp["aldo.auditor"]).now(),
    }
    assert answer(right) == unknown  # locked: said as any other failure
    assert created["account"]["awaiting_activation"]

    # Each answer is a password hash's work: a locked account is not answered at once.
    locked = median_seconds(lambda: client.post("/v1/auth/login", json=right))
    nobody = median_seconds(
        lambda: client.post("/v1/auth/login", json=right | {"username": "no.such.person"})
    )
    assert 0.5 < locked / nobody < 2, (locked, nobody)
