"""Helpers for the governance tests: staff accounts made in the database, tokens signed with
the service's key, a valid request body, and a request walked through its reviews."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, timedelta
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account, TrainingRecord
from app.accounts.service import kind_of
from app.core.composition import template_keys
from app.core.settings import Settings
from app.requests.rules import LEVEL_ROLE, Level, required_levels
from auth import Role, SubjectKind, TokenIssuer, hash_secret

PASSWORD = "lilac orbit fennel 57"
LOOPBACK = ("127.0.0.1", 50000)


def request_body(**changes: Any) -> dict[str, Any]:
    """A request that passes screening: a local police narcotics case with a subpoena."""
    body: dict[str, Any] = {
        "agency_name": "Olympia Police Department",
        "agency_code": "OPD",
        "agency_kind": "local",
        "case_number": "OPD-2026-0412",
        "requesting_officer": "Det. R. Alvarez",
        "crime": {"category": "narcotics", "statutes": ["RCW 69.50.401"]},
        "legal_process": "subpoena",
        "narrative": "Surveillance still from a controlled buy; suspect unidentified.",
    }
    body.update(changes)
    return body


# A court order's document as an agency would send it (a PDF), and the order it is.
COURT_ORDER_DOCUMENT = b"%PDF-1.7\n% Order authorising release of identifying information\n%%EOF\n"
COURT_ORDER = {
    "court": "U.S. District Court, W.D. Wash.",
    "judge": "Hon. M. Chen",
    "signed_on": str(date.today() - timedelta(days=9)),
    "document_sha256": hashlib.sha256(COURT_ORDER_DOCUMENT).hexdigest(),
}


def upload_court_order(
    client: TestClient,
    headers: dict[str, str],
    request_id: int,
    document: bytes = COURT_ORDER_DOCUMENT,
) -> Any:
    return client.put(
        f"/v1/requests/{request_id}/court-order",
        headers=headers,
        files={"document": ("order.pdf", document, "application/pdf")},
    )


# Hashed once: every account the in-process tests make has this password.
PASSWORD_HASH = hash_secret(PASSWORD)


class Staff:
    """Accounts by username, with what a test needs to act as each.

    Accounts are written straight into the database, active, with a password and a second
    factor, as if activated: the tests of activation and dual control go through the API
    (tests/test_accounts.py); the rest need people who are there already.
    """

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        assert settings.jwt_key is not None
        self.sessions = sessions
        self.keys = template_keys(settings)
        self.tokens = TokenIssuer(settings.jwt_key.get_secret_value(), timedelta(minutes=15))
        self.course = settings.operator_course
        self.ids: dict[str, int] = {}
        self.roles: dict[str, Role] = {}
        self.totp: dict[str, str] = {}
        self.secrets: dict[str, str] = {}

    def add(self, username: str, role: Role, *, trained: bool = True) -> int:
        """An active account; a person's second factor set up, an operator's training current."""
        system = role is Role.review_system
        with self.sessions.begin() as session:
            account = Account(username=username, kind=kind_of(role).value, role=role.value)
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
                today = date.today()
                session.add(
                    TrainingRecord(
                        account_id=account.id,
                        course=self.course,
                        completed_on=today - timedelta(days=30),
                        expires_on=today + timedelta(days=335),
                    )
                )
            self.ids[username], self.roles[username] = account.id, role
        return self.ids[username]

    def token(self, username: str, *, mfa: bool = True) -> str:
        role = self.roles[username]
        kind = kind_of(role)
        with self.sessions() as session:
            epoch = session.get_one(Account, self.ids[username]).token_epoch
        return self.tokens.issue(
            self.ids[username], role, kind, mfa and kind is SubjectKind.person, epoch
        )

    def headers(self, username: str, **kwargs: bool) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username, **kwargs)}"}

    def on_behalf(self, username: str, system: str = "review-system") -> dict[str, str]:
        """A person's token with the review system's beside it, as the system sends them."""
        return self.headers(username) | {"X-Calling-System": self.token(system)}

    def disable(self, username: str) -> None:
        with self.sessions.begin() as session:
            session.get_one(Account, self.ids[username]).active = False


REVIEWERS = {
    Role.staff_reviewer: "sam.staff",
    Role.manager: "mia.manager",
    Role.unit_admin: "uma.unitadmin",
    Role.director: "dan.director",
    Role.governor_office: "gail.governor",
}


def add_reviewers(staff: Staff) -> None:
    for role, username in REVIEWERS.items():
        staff.add(username, role)


def approve(
    client: TestClient,
    staff: Staff,
    request_id: int,
    immigration_related: bool = False,
    operators: tuple[str, ...] = ("olga.operator",),
) -> dict:
    """Every required level approves, each reviewer calling directly; the unit administrator
    assigns `operators`."""
    response = None
    for level in required_levels(immigration_related):
        body: dict[str, Any] = {"decision": "approve", "reason": "meets the policy"}
        if level is Level.unit_administrator:
            body["operators"] = list(operators)
        response = client.post(
            f"/v1/requests/{request_id}/reviews",
            headers=staff.headers(REVIEWERS[LEVEL_ROLE[level]]),
            json=body,
        )
        assert response.status_code == 201, response.json()
    assert response is not None
    return response.json()
