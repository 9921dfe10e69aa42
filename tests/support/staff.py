"""The agency's staff for a test: accounts by username, with what a test needs to act as each
person or system, made one of two ways behind one interface.

- `Staff.in_process(sessions, settings)` writes each account straight into the database,
  active, with a password and a second factor, as if activated, and signs its tokens with the
  service's key: for the tests that need people who are there already. The tests of
  activation and dual control themselves go through the API (tests/test_accounts.py).
- `Staff.over_http(client, environment)` makes each account as the agency does (the README
  walkthrough's way): the first administrator with `facematch accounts first-admin`, the
  second proposed by the first through the API and approved with `facematch accounts
  approve`, everyone else asked for by the first administrator and approved by the second;
  each person activates their own account with both halves of their activation code, sets up
  their own second factor and signs in with it; a system gets its token with its client
  secret. `client` is any HTTP client of the service (a served one, or the in-process
  TestClient); `environment` that of a `facematch` command on the same database.

Either way `add`, `add_agency`, `token`, `headers`, `on_behalf`, `disable`, `ids`, `roles`,
`totp` and `secrets` mean the same. What only one way can do says so when asked of the other.
"""

from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pyotp
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account, TrainingRecord
from app.accounts.service import kind_of
from app.core.composition import template_keys
from app.core.settings import Settings
from auth import Role, SubjectKind, TokenIssuer, hash_secret
from tests.support.commands import facematch

# Every person's password, whichever way they were made.
PASSWORD = "lilac orbit fennel 57"
# Hashed once: the in-process accounts all have it.
PASSWORD_HASH = hash_secret(PASSWORD)

# The reviewer at each level of the review chain.
REVIEWERS = {
    Role.staff_reviewer: "sam.staff",
    Role.manager: "mia.manager",
    Role.unit_administrator: "uma.unitadmin",
    Role.director: "dan.director",
    Role.governor_office: "gail.governor",
}
# The whole agency: two administrators (first, as over HTTP they make everyone else), a
# reviewer for every level, a trained operator, a records clerk, an auditor and the
# request-review system.
AGENCY: dict[str, Role] = {
    "ada.admin": Role.admin,
    "ben.admin": Role.admin,
    **{username: role for role, username in REVIEWERS.items()},
    "olga.operator": Role.operator,
    "rita.records": Role.records_clerk,
    "aldo.auditor": Role.auditor,
    "review-system": Role.review_system,
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def current_training(today: date | None = None) -> tuple[date, date]:
    """When an operator's training was completed and when it expires: a month ago, and
    eleven months on."""
    today = today or date.today()
    return today - timedelta(days=30), today + timedelta(days=335)


class Staff(ABC):
    """Accounts by username: `ids` (account ids), `roles`, `totp` (each person's TOTP seed)
    and `secrets` (each system's client secret)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.roles: dict[str, Role] = {}
        self.totp: dict[str, str] = {}
        self.secrets: dict[str, str] = {}

    @staticmethod
    def in_process(sessions: sessionmaker[Session], settings: Settings) -> Staff:
        return InProcessStaff(sessions, settings)

    @staticmethod
    def over_http(client: httpx.Client, environment: dict[str, str]) -> Staff:
        return HttpStaff(client, environment)

    @abstractmethod
    def add(self, username: str, role: Role, *, trained: bool = True) -> int:
        """An active account, its id: a person's second factor set up, an operator's
        training current unless `trained` is false."""

    @abstractmethod
    def token(self, username: str, *, mfa: bool = True) -> str:
        """A token to act as `username`: a person's made with their second factor unless
        `mfa` is false (in process only)."""

    @abstractmethod
    def disable(self, username: str) -> None:
        """The account disabled: its tokens stop working."""

    def add_agency(self) -> None:
        """Everyone in AGENCY not added yet, in its order."""
        for username, role in AGENCY.items():
            if username not in self.ids:
                self.add(username, role)

    def add_reviewers(self) -> None:
        """The reviewer of every level (REVIEWERS)."""
        for role, username in REVIEWERS.items():
            self.add(username, role)

    def headers(self, username: str, *, mfa: bool = True) -> dict[str, str]:
        return bearer(self.token(username, mfa=mfa))

    def on_behalf(self, username: str, system: str = "review-system") -> dict[str, str]:
        """A person's token with the review system's beside it, as the system sends them."""
        return self.headers(username) | {"X-Calling-System": self.token(system)}


class InProcessStaff(Staff):
    """Accounts written into the database; tokens signed with the service's key."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        super().__init__()
        assert settings.jwt_key is not None, "the tokens are signed with the settings' key"
        self.sessions = sessions
        self.keys = template_keys(settings)
        self.signer = TokenIssuer(
            settings.jwt_key.get_secret_value(), timedelta(minutes=settings.token_minutes)
        )
        self.course = settings.operator_course

    def add(self, username: str, role: Role, *, trained: bool = True) -> int:
        system = role is Role.review_system
        with self.sessions.begin() as session:
            account = Account(username=username, kind=kind_of(role), role=role)
            if system:
                self.secrets[username] = secrets.token_urlsafe(32)
                account.secret_hash = hash_secret(self.secrets[username])
            else:
                account.secret_hash = PASSWORD_HASH
            session.add(account)
            session.flush()
            if not system:
                self.totp[username] = pyotp.random_base32()
                account.totp_seed = self.keys.seal(
                    self.totp[username].encode(), f"totp:{account.id}"
                )
                account.totp_active = True
            if role is Role.operator and trained:
                completed_on, expires_on = current_training()
                session.add(
                    TrainingRecord(
                        account_id=account.id,
                        course=self.course,
                        completed_on=completed_on,
                        expires_on=expires_on,
                    )
                )
            self.ids[username], self.roles[username] = account.id, role
        return self.ids[username]

    def token(self, username: str, *, mfa: bool = True) -> str:
        role = self.roles[username]
        kind = kind_of(role)
        with self.sessions() as session:
            epoch = session.get_one(Account, self.ids[username]).token_epoch
        return self.signer.issue(
            self.ids[username], role, kind, mfa and kind is SubjectKind.person, epoch
        )

    def disable(self, username: str) -> None:
        with self.sessions.begin() as session:
            session.get_one(Account, self.ids[username]).active = False


def printed_code(output: str) -> str:
    """The activation code a `facematch accounts` command printed."""
    return output.rsplit(": ", 1)[1].strip()


def printed_account(output: str) -> int:
    """The id of the account a `facematch accounts` command made."""
    made = re.search(r"^account (\d+) created", output, re.MULTILINE)
    assert made is not None, output
    return int(made.group(1))


class HttpStaff(Staff):
    """Accounts made through the API and the command line, as the agency makes them; each
    person's token the one they got signing in with their own second factor."""

    def __init__(self, client: httpx.Client, environment: dict[str, str]) -> None:
        super().__init__()
        self.client, self.environment = client, environment
        self.course = environment.get(
            "FACEMATCH_OPERATOR_COURSE", Settings.model_fields["operator_course"].default
        )
        self.tokens: dict[str, str] = {}
        # The first two administrators, in order: the first asks, the second approves.
        self.administrators: list[str] = []

    def add(self, username: str, role: Role, *, trained: bool = True) -> int:
        if role is Role.admin and len(self.administrators) < 2:
            account_id, credentials = self._administrator(username)
            self.administrators.append(username)
        else:
            if len(self.administrators) < 2:
                raise RuntimeError(
                    "over HTTP two administrators make every other account: add them first"
                )
            made = self._approved("/v1/accounts", {"username": username, "role": role.value})
            account_id, credentials = made["account"]["id"], made["credentials"]
            if role is Role.operator and trained:
                completed_on, expires_on = current_training()
                course = {
                    "course": self.course,
                    "completed_on": str(completed_on),
                    "expires_on": str(expires_on),
                }
                self._approved(f"/v1/accounts/{account_id}/training", course)
        self.ids[username], self.roles[username] = account_id, role
        if role is Role.review_system:
            self.secrets[username] = credentials["client_secret"]
            self.tokens[username] = self._client_token(username)
        else:
            self.tokens[username] = self._activate(username, credentials["activation_code"])
        return account_id

    def token(self, username: str, *, mfa: bool = True) -> str:
        if not mfa and self.roles[username] is not Role.review_system:
            raise ValueError(
                "over HTTP a person has set up their second factor and signs in with it: a "
                "token without it is made in process only (Staff.in_process)"
            )
        return self.tokens[username]

    def disable(self, username: str) -> None:
        admin = next(a for a in self.administrators if a != username)
        disabled = self.client.patch(
            f"/v1/accounts/{self.ids[username]}",
            headers=self.headers(admin),
            json={"active": False},
        )
        assert disabled.status_code == 200, disabled.json()

    def _administrator(self, username: str) -> tuple[int, dict[str, str]]:
        """The first administrator on the command line, alone; the second proposed by the
        first and approved on the command line. The id, and the whole activation code."""
        if not self.administrators:
            made = facematch(self.environment, "accounts", "first-admin", username)
            return printed_account(made), {"activation_code": printed_code(made)}
        proposed = self.client.post(
            "/v1/accounts",
            headers=self.headers(self.administrators[0]),
            json={"username": username, "role": "admin"},
        )
        assert proposed.status_code == 202, proposed.json()
        change = proposed.json()["pending_change"]["id"]
        approved = facematch(self.environment, "accounts", "approve", str(change))
        first = proposed.json()["credentials"]["activation_code"]
        code = f"{first}-{printed_code(approved)}"
        return printed_account(approved), {"activation_code": code}

    def _approved(self, path: str, body: dict[str, str]) -> dict[str, Any]:
        """The first administrator asks; where the change waits for a second, the second
        approves it. A person's activation code is the first's half, then the second's."""
        asker, approver = (self.headers(admin) for admin in self.administrators)
        asked = self.client.post(path, headers=asker, json=body)
        assert asked.status_code in (201, 202), asked.json()
        if asked.status_code == 201:
            return dict(asked.json())
        change = asked.json()["pending_change"]["id"]
        approved = self.client.post(f"/v1/account-changes/{change}/approve", headers=approver)
        assert approved.status_code == 200, approved.json()
        outcome: dict[str, Any] = approved.json()
        first = (asked.json()["credentials"] or {}).get("activation_code")
        if first is not None:
            second = outcome["credentials"]["activation_code"]
            outcome["credentials"]["activation_code"] = f"{first}-{second}"
        return outcome

    def _activate(self, username: str, code: str) -> str:
        """A person's first sign-in: their own password with the activation code, then their
        own second factor (the otpauth URI is shown once), then a sign-in with a code."""
        first = self.client.post(
            "/v1/auth/activate",
            json={"username": username, "activation_code": code, "password": PASSWORD},
        )
        assert first.status_code == 200 and not first.json()["mfa"], first.json()
        half = bearer(first.json()["access_token"])
        setup = self.client.post("/v1/auth/totp", headers=half)
        totp = pyotp.parse_uri(setup.json()["otpauth_uri"])
        assert isinstance(totp, pyotp.TOTP)
        confirmed = self.client.post(
            "/v1/auth/totp/confirm", headers=half, json={"code": totp.now()}
        )
        assert confirmed.status_code == 204
        self.totp[username] = totp.secret
        # Each code is good once: sign in with the next one.
        code = totp.at(datetime.now(UTC) + timedelta(seconds=30))
        signed_in = self.client.post(
            "/v1/auth/login",
            json={"username": username, "password": PASSWORD, "totp_code": code},
        )
        assert signed_in.status_code == 200 and signed_in.json()["mfa"], signed_in.json()
        return str(signed_in.json()["access_token"])

    def _client_token(self, username: str) -> str:
        token = self.client.post(
            "/v1/auth/token",
            json={"client_id": username, "client_secret": self.secrets[username]},
        )
        assert token.status_code == 200, token.json()
        return str(token.json()["access_token"])
