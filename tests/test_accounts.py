"""Accounts as the agency runs them: nobody learns another person's password, second factor or
whole activation code, every change that lets someone act takes two administrators, and a
sign-in says nothing of who exists."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account
from app.core.settings import Settings
from auth import Role
from tests.support.requests import approve, request_body
from tests.support.staff import PASSWORD, Staff, bearer

NEW_PASSWORD = "quartz lantern meadow 91"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Sign-ins are counted per username: the rate limit is not what most of these try."""
    return settings.model_copy(update={"login_rate_limit": "1000/minute"})


@pytest.fixture
def staff(staff: Staff) -> Staff:
    """Two administrators, made as if activated: the people they make activate here."""
    staff.add("ada.admin", Role.admin)
    staff.add("ben.admin", Role.admin)
    return staff


def activate(
    client: TestClient, username: str, code: str, password: str = PASSWORD
) -> httpx.Response:
    return client.post(
        "/v1/auth/activate",
        json={"username": username, "activation_code": code, "password": password},
    )


def second_factor(client: TestClient, token: str) -> pyotp.TOTP:
    uri = client.post("/v1/auth/totp", headers=bearer(token)).json()["otpauth_uri"]
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    confirmed = client.post(
        "/v1/auth/totp/confirm", headers=bearer(token), json={"code": totp.now()}
    )
    assert confirmed.status_code == 204
    return totp


def sign_in(
    client: TestClient, username: str, totp: pyotp.TOTP, password: str = PASSWORD
) -> httpx.Response:
    code = totp.at(datetime.now(UTC) + timedelta(seconds=30))
    return client.post(
        "/v1/auth/login", json={"username": username, "password": password, "totp_code": code}
    )


def two_administrators(
    client: TestClient,
    staff: Staff,
    path: str,
    body: dict[str, Any] | None = None,
    method: str = "POST",
) -> tuple[dict[str, Any], str | None]:
    """Ada asks, Ben approves: what took effect, and the whole activation code the person is
    handed (Ada's half, then Ben's), where there is one."""
    asked = client.request(method, path, headers=staff.headers("ada.admin"), json=body)
    assert asked.status_code == 202, asked.json()
    change = asked.json()["pending_change"]["id"]
    approved = client.post(
        f"/v1/account-changes/{change}/approve", headers=staff.headers("ben.admin")
    )
    assert approved.status_code == 200, approved.json()
    first, second = asked.json()["credentials"], approved.json()["credentials"]
    if first is None:
        return approved.json(), None
    assert (first["activation_part"], second["activation_part"]) == ("first", "second")
    return approved.json(), f"{first['activation_code']}-{second['activation_code']}"


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
    outcome, code = two_administrators(
        client, staff, "/v1/accounts", {"username": "nia.new", "role": "auditor"}
    )
    assert code is not None
    assert outcome["account"]["awaiting_activation"] and not outcome["account"]["totp_active"]
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
    real = bearer(signed_in.json()["access_token"])
    assert client.get("/v1/audit/verify", headers=real).status_code == 200
    # The code was used once; it is gone.
    assert activate(client, "nia.new", code).json()["code"] == "invalid_activation"

    # The seed is sealed at rest: neither the row nor the database file holds it.
    with sessions() as session:
        account = session.get_one(Account, outcome["account"]["id"])
    assert account.totp_seed is not None and totp.secret.encode() not in account.totp_seed
    database = Path(settings.sqlalchemy_url.removeprefix("sqlite:///"))
    if database.is_file():
        assert totp.secret.encode() not in database.read_bytes()


def test_an_activation_code_stops_working_when_it_expires_or_the_account_is_disabled(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session]
) -> None:
    made = []
    for username in ("nia.new", "noa.new"):
        outcome, code = two_administrators(
            client, staff, "/v1/accounts", {"username": username, "role": "auditor"}
        )
        made.append((outcome["account"]["id"], code))
    (late_id, late_code), (off_id, off_code) = made
    with sessions.begin() as session:
        session.execute(
            update(Account)
            .where(Account.id == late_id)
            .values(activation_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    late = activate(client, "nia.new", late_code or "")
    assert late.status_code == 401 and late.json()["code"] == "invalid_activation"
    ada = staff.headers("ada.admin")
    assert (
        client.patch(f"/v1/accounts/{off_id}", headers=ada, json={"active": False}).status_code
        == 200
    )
    # Disabling spent the code: enabling the account later does not bring it back.
    off = activate(client, "noa.new", off_code or "")
    assert off.status_code == 401 and off.json()["code"] == "invalid_activation"


def test_one_administrator_alone_can_neither_make_nor_take_over_an_account(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """The attacks: one administrator makes a review system, an operator and reviewers, or
    resets real reviewers' accounts to take them over, and walks a request to a search
    alone. Every step that gives someone the means to act waits for a second administrator,
    and no administrator is shown a whole activation code."""
    ada, ben = staff.headers("ada.admin"), staff.headers("ben.admin")
    staff.add_reviewers()  # Mia the manager among them
    for role in (
        "review_system",
        "operator",
        "staff_reviewer",
        "unit_administrator",
        "records_clerk",
    ):
        asked = client.post(
            "/v1/accounts", headers=ada, json={"username": f"x.{role}", "role": role}
        )
        assert asked.status_code == 202 and asked.json()["account"] is None, role
    taken = client.post(f"/v1/accounts/{staff.ids['mia.manager']}/reset", headers=ada)
    assert taken.status_code == 202 and taken.json()["credentials"]["activation_part"] == "first"
    own = client.post(
        f"/v1/account-changes/{taken.json()['pending_change']['id']}/approve", headers=ada
    )
    assert own.status_code == 403 and own.json()["code"] == "own_change"
    # Nothing took effect: no new account to sign in as, and Mia's account is as it was.
    listed = {a["username"]: a for a in client.get("/v1/accounts", headers=ada).json()}
    assert not {u for u in listed if u.startswith("x.")}
    assert not listed["mia.manager"]["awaiting_activation"]

    # Approved, the reset's code is in two halves: neither administrator's works alone.
    approved = client.post(
        f"/v1/account-changes/{taken.json()['pending_change']['id']}/approve", headers=ben
    )
    first = taken.json()["credentials"]["activation_code"]
    second = approved.json()["credentials"]["activation_code"]
    for half in (first, second, f"{first}-{first}", f"{second}-{first}"):
        assert activate(client, "mia.manager", half).json()["code"] == "invalid_activation"
    assert activate(client, "mia.manager", f"{first}-{second}").status_code == 200

    # An operator's training, too, takes effect only on a second administrator's approval.
    outcome, code = two_administrators(
        client, staff, "/v1/accounts", {"username": "oli.operator", "role": "operator"}
    )
    today = date.today()
    course = {
        "course": settings.operator_course,
        "completed_on": str(today - timedelta(days=1)),
        "expires_on": str(today + timedelta(days=364)),
    }
    operator_id = outcome["account"]["id"]
    training = client.post(f"/v1/accounts/{operator_id}/training", headers=ada, json=course)
    assert training.status_code == 202 and training.json()["training"] is None
    token = activate(client, "oli.operator", code or "").json()["access_token"]
    oli = bearer(
        sign_in(client, "oli.operator", second_factor(client, token)).json()["access_token"]
    )
    staff.add("rita.records", Role.records_clerk)
    request_id = client.post(
        "/v1/requests", headers=staff.headers("rita.records"), json=request_body()
    ).json()["id"]
    approve(client, staff, request_id, operators=("oli.operator",))
    probe = {"probe": ("probe.jpg", b"not yet read")}
    untrained = client.post(f"/v1/requests/{request_id}/searches", headers=oli, files=probe)
    assert untrained.status_code == 403 and untrained.json()["code"] == "training_expired"
    change = training.json()["pending_change"]["id"]
    done = client.post(f"/v1/account-changes/{change}/approve", headers=ben)
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


def test_re_enabling_or_resetting_an_account_waits_for_a_second_administrator(
    client: TestClient, staff: Staff
) -> None:
    operator = staff.add("olga.operator", Role.operator)
    ada = staff.headers("ada.admin")
    old = staff.headers("olga.operator")
    disabled = client.patch(f"/v1/accounts/{operator}", headers=ada, json={"active": False})
    assert disabled.status_code == 200
    two_administrators(client, staff, f"/v1/accounts/{operator}", {"active": True}, "PATCH")
    assert client.get("/v1/requests/1", headers=old).json()["code"] == "token_revoked"
    _, code = two_administrators(client, staff, f"/v1/accounts/{operator}/reset")
    assert code is not None
    # The reset ended the old password: the right one and a fresh code answer as wrong.
    code_now = pyotp.TOTP(staff.totp["olga.operator"]).now()
    login = {"username": "olga.operator", "password": PASSWORD, "totp_code": code_now}
    assert client.post("/v1/auth/login", json=login).json()["code"] == "invalid_credentials"
    pending = client.get("/v1/account-changes", params={"status": "pending"}, headers=ada)
    assert pending.json() == []
    assert activate(client, "olga.operator", code).json()["mfa"] is False


def test_a_person_changes_their_own_password_and_their_old_tokens_end(
    client: TestClient, staff: Staff
) -> None:
    staff.add("aldo.auditor", Role.auditor)
    old = staff.headers("aldo.auditor")
    body = {"current_password": PASSWORD, "new_password": "password1234"}
    weak = client.post("/v1/auth/password", headers=old, json=body)
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    guess = body | {"current_password": "guess", "new_password": NEW_PASSWORD}
    not_theirs = client.post("/v1/auth/password", headers=old, json=guess)
    assert not_theirs.status_code == 422 and not_theirs.json()["code"] == "wrong_password"
    mine = body | {"new_password": NEW_PASSWORD}
    assert client.post("/v1/auth/password", headers=old, json=mine).status_code == 204
    assert client.get("/v1/audit/verify", headers=old).json()["code"] == "token_revoked"
    totp = pyotp.TOTP(staff.totp["aldo.auditor"])
    assert sign_in(client, "aldo.auditor", totp).json()["code"] == "invalid_credentials"
    assert sign_in(client, "aldo.auditor", totp, NEW_PASSWORD).status_code == 200


def median_seconds(call: Callable[[], object], times: int = 5) -> float:
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
    outcome, _ = two_administrators(
        client, staff, "/v1/accounts", {"username": "nia.new", "role": "auditor"}
    )
    assert outcome["account"]["awaiting_activation"]

    def answer(body: dict[str, str], path: str = "/v1/auth/login") -> tuple[int, str, str]:
        response = client.post(path, json=body)
        return response.status_code, response.json()["code"], response.json()["message"]

    unknown = answer({"username": "no.such.person", "password": PASSWORD, "totp_code": "123456"})
    wrong = {"username": "aldo.auditor", "password": "wrong", "totp_code": "123456"}
    assert answer(wrong) == unknown
    assert answer({"username": "nia.new", "password": PASSWORD}) == unknown  # not activated
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
    code_now = pyotp.TOTP(staff.totp["aldo.auditor"]).now()
    right = {"username": "aldo.auditor", "password": PASSWORD, "totp_code": code_now}
    assert answer(right) == unknown  # locked: said as any other failure

    # Each answer is a password hash's work: a locked account is not answered at once.
    locked = median_seconds(lambda: client.post("/v1/auth/login", json=right))
    nobody = median_seconds(
        lambda: client.post("/v1/auth/login", json=right | {"username": "no.such.person"})
    )
    assert 0.5 < locked / nobody < 2, (locked, nobody)
