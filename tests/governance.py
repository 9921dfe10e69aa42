"""Helpers for the governance tests: staff accounts made in the database, tokens signed with
the service's key, a valid request body, and a request walked through its reviews."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import add_training, create_account
from app.config import Settings
from app.models import Account
from app.rules import LEVEL_ROLE, required_levels
from auth import Role, SubjectKind, TokenIssuer

PASSWORD = "correct horse battery staple"
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


COURT_ORDER = {
    "court": "U.S. District Court, W.D. Wash.",
    "judge": "Hon. M. Chen",
    "signed_on": "2026-11-02",
    "document_sha256": "a" * 64,
}


class Staff:
    """Accounts by username, with what a test needs to act as each."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.tokens = TokenIssuer(settings.jwt_key.get_secret_value(), timedelta(minutes=15))
        self.course = settings.operator_course
        self.ids: dict[str, int] = {}
        self.roles: dict[str, Role] = {}
        self.totp: dict[str, str] = {}
        self.secrets: dict[str, str] = {}

    def add(self, username: str, role: Role, *, trained: bool = True) -> int:
        """An active account; a person's second factor set up, an operator's training current."""
        with self.sessions.begin() as session:
            system = role is Role.review_system
            account, secret = create_account(
                session, username, role, None if system else PASSWORD, "test"
            )
            if secret is not None:
                self.secrets[username] = secret
            else:
                account.totp_secret = self.totp[username] = pyotp.random_base32()
                account.totp_active = True
            if role is Role.operator and trained:
                today = date.today()
                add_training(
                    session,
                    account.id,
                    self.course,
                    today - timedelta(days=30),
                    today + timedelta(days=335),
                    "test",
                )
            self.ids[username], self.roles[username] = account.id, role
        return self.ids[username]

    def token(self, username: str, *, mfa: bool = True) -> str:
        role = self.roles[username]
        kind = SubjectKind.system if role is Role.review_system else SubjectKind.person
        return self.tokens.issue(self.ids[username], role, kind, mfa and kind is SubjectKind.person)

    def headers(self, username: str, **kwargs: bool) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username, **kwargs)}"}

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
    client: TestClient, staff: Staff, request_id: int, immigration_related: bool = False
) -> dict:
    """Every required level approves, each reviewer calling directly."""
    response = None
    for level in required_levels(immigration_related):
        response = client.post(
            f"/v1/requests/{request_id}/reviews",
            headers=staff.headers(REVIEWERS[LEVEL_ROLE[level]]),
            json={"decision": "approve", "reason": "meets the policy"},
        )
        assert response.status_code == 201, response.json()
    assert response is not None
    return response.json()
