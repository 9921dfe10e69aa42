"""Every state-changing route, called as it should be and refused in each way it can be,
writes exactly one audit entry: with the actor, the event and the outcome."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pyotp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.api.middleware import STATE_CHANGING
from app.audit.models import AuditEntry
from app.core.settings import Settings
from auth import Role
from tests.support.data import sample
from tests.support.evaluations import lfw_gendered, zipped
from tests.support.requests import COURT_ORDER, COURT_ORDER_DOCUMENT, request_body
from tests.support.searches import conclusions
from tests.support.staff import PASSWORD, REVIEWERS, Staff


class Ledger:
    """Calls the service and checks each call wrote one entry, as expected."""

    def __init__(self, client: TestClient, sessions: sessionmaker[Session]) -> None:
        self.client, self.sessions = client, sessions
        self.covered: set[tuple[str, str]] = set()

    def last_seq(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())) or 0

    def call(
        self, route: tuple[str, str], path: str, actor: str, status: int, **request: Any
    ) -> Response:
        before = self.last_seq()
        response = self.client.request(route[0], path, **request)
        assert response.status_code == status, (route, response.json())
        with self.sessions() as session:
            entries = session.scalars(select(AuditEntry).where(AuditEntry.seq > before)).all()
        assert len(entries) == 1, (route, status, [e.event_type for e in entries])
        [entry] = entries
        assert entry.actor == actor and entry.event_type, (route, entry.actor, entry.event_type)
        if status >= 400:
            assert entry.outcome == f"refused:{response.json()['code']}", (route, entry.outcome)
        else:
            assert not entry.outcome.startswith("refused"), (route, entry.outcome)
        self.covered.add(route)
        return response


def test_every_state_changing_route_writes_exactly_one_entry_allowed_or_refused(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings, staff: Staff
) -> None:
    staff.add_agency()
    ledger = Ledger(client, sessions)
    actor = {name: f"account:{ident}" for name, ident in staff.ids.items()}
    admin, clerk = staff.headers("ada.admin"), staff.headers("rita.records")
    operator = staff.headers("olga.operator")

    def refused_three_ways(route: tuple[str, str], path: str, allowed: str, **request: Any) -> None:
        """No token; a role without the permission; a body that is not valid."""
        ledger.call(route, path, "anonymous", 401, **request)
        wrong = "rita.records" if allowed != "rita.records" else "olga.operator"
        ledger.call(route, path, actor[wrong], 403, headers=staff.headers(wrong), **request)
        if "json" in request:
            ledger.call(route, path, actor[allowed], 422, headers=staff.headers(allowed), json=[])

    # Accounts, and the changes a second administrator approves.
    ben = staff.headers("ben.admin")
    route = ("POST", "/v1/accounts")
    person = {"username": "nia.new", "role": "auditor"}
    asked = ledger.call(route, route[1], actor["ada.admin"], 202, headers=admin, json=person)
    refused_three_ways(route, route[1], "ada.admin", json=person)
    taken = {"username": "ada.admin", "role": "auditor"}
    ledger.call(route, route[1], actor["ada.admin"], 409, headers=admin, json=taken)
    powerful = {"username": "oli.operator", "role": "operator"}
    pending = ledger.call(route, route[1], actor["ada.admin"], 202, headers=admin, json=powerful)

    route = ("POST", "/v1/account-changes/{change_id}/approve")
    path = f"/v1/account-changes/{asked.json()['pending_change']['id']}/approve"
    ledger.call(route, path, actor["ada.admin"], 403, headers=admin)  # their own
    refused_three_ways(route, path, "ben.admin")
    made = ledger.call(route, path, actor["ben.admin"], 200, headers=ben)
    new_id = made.json()["account"]["id"]
    ledger.call(route, path, actor["ben.admin"], 409, headers=ben)
    path = f"/v1/account-changes/{pending.json()['pending_change']['id']}/approve"
    operator_id = ledger.call(route, path, actor["ben.admin"], 200, headers=ben).json()["account"][
        "id"
    ]

    route, path = ("PATCH", "/v1/accounts/{account_id}"), f"/v1/accounts/{new_id}"
    ledger.call(route, path, actor["ada.admin"], 202, headers=admin, json={"active": True})
    ledger.call(route, path, actor["ada.admin"], 200, headers=admin, json={"active": False})
    refused_three_ways(route, path, "ada.admin", json={"active": True})
    missing = "/v1/accounts/999999"
    ledger.call(route, missing, actor["ada.admin"], 404, headers=admin, json={"active": True})

    route, path = ("POST", "/v1/accounts/{account_id}/reset"), f"/v1/accounts/{new_id}/reset"
    reset = ledger.call(route, path, actor["ada.admin"], 202, headers=admin)
    refused_three_ways(route, path, "ada.admin")
    # Enabled and reset, both approved: the person activates with the reset's code.
    for change in client.get("/v1/account-changes", headers=admin).json():
        if change["status"] == "pending" and change["account_id"] == new_id:
            approving = f"/v1/account-changes/{change['id']}/approve"
            approval = ledger.call(
                ("POST", "/v1/account-changes/{change_id}/approve"),
                approving,
                actor["ben.admin"],
                200,
                headers=ben,
            )
            if change["kind"] == "reset_account":
                second = approval.json()["credentials"]["activation_code"]
    code = f"{reset.json()['credentials']['activation_code']}-{second}"

    route = ("POST", "/v1/accounts/{account_id}/training")
    path = f"/v1/accounts/{operator_id}/training"
    today = date.today()
    course = {
        "course": settings.operator_course,
        "completed_on": str(today),
        "expires_on": str(today + timedelta(days=365)),
    }
    training = ledger.call(route, path, actor["ada.admin"], 202, headers=admin, json=course)
    refused_three_ways(route, path, "ada.admin", json=course)
    future = course | {"completed_on": str(today + timedelta(days=1))}
    ledger.call(route, path, actor["ada.admin"], 422, headers=admin, json=future)

    route = ("POST", "/v1/account-changes/{change_id}/reject")
    path = f"/v1/account-changes/{training.json()['pending_change']['id']}/reject"
    refused_three_ways(route, path, "ben.admin")
    ledger.call(route, path, actor["ben.admin"], 200, headers=ben)
    ledger.call(route, path, actor["ben.admin"], 409, headers=ben)

    # The new person activates their account and sets up their second factor.
    route = ("POST", "/v1/auth/activate")
    activation = {"username": "nia.new", "activation_code": code, "password": PASSWORD}
    ledger.call(
        route, route[1], f"account:{new_id}", 401, json=activation | {"activation_code": "X"}
    )
    ledger.call(route, route[1], "anonymous", 422, json=activation | {"password": "password1234"})
    ledger.call(route, route[1], "anonymous", 422, json={"username": "nia.new"})
    first = ledger.call(route, route[1], f"account:{new_id}", 200, json=activation)
    nia = {"Authorization": f"Bearer {first.json()['access_token']}"}

    route = ("POST", "/v1/auth/login")
    password_only = {"username": "nia.new", "password": PASSWORD}
    ledger.call(route, route[1], f"account:{new_id}", 200, json=password_only)
    wrong = {"username": "nia.new", "password": "not the password"}
    ledger.call(route, route[1], f"account:{new_id}", 401, json=wrong)
    ledger.call(route, route[1], "anonymous", 422, json={"username": "nia.new"})

    route = ("POST", "/v1/auth/totp")
    setup = ledger.call(route, route[1], f"account:{new_id}", 200, headers=nia)
    ledger.call(route, route[1], "anonymous", 401)
    route = ("POST", "/v1/auth/totp/confirm")
    totp = pyotp.parse_uri(setup.json()["otpauth_uri"])
    assert isinstance(totp, pyotp.TOTP)
    ledger.call(route, route[1], f"account:{new_id}", 422, headers=nia, json={"code": "000000"})
    ledger.call(route, route[1], f"account:{new_id}", 204, headers=nia, json={"code": totp.now()})
    ledger.call(route, route[1], "anonymous", 401, json={"code": totp.now()})
    ledger.call(
        ("POST", "/v1/auth/totp"), "/v1/auth/totp", f"account:{new_id}", 409, headers=nia
    )  # already set up

    route = ("POST", "/v1/auth/password")
    change_to = {"current_password": PASSWORD, "new_password": "quartz lantern meadow 91"}
    ledger.call(route, route[1], f"account:{new_id}", 403, headers=nia, json=change_to)  # no mfa
    auditor = staff.headers("aldo.auditor")
    ledger.call(route, route[1], "anonymous", 401, json=change_to)
    not_mine = change_to | {"current_password": "not the password"}
    ledger.call(route, route[1], actor["aldo.auditor"], 422, headers=auditor, json=not_mine)
    ledger.call(route, route[1], actor["aldo.auditor"], 204, headers=auditor, json=change_to)

    route = ("POST", "/v1/auth/token")
    secret = {"client_id": "review-system", "client_secret": staff.secrets["review-system"]}
    ledger.call(route, route[1], actor["review-system"], 200, json=secret)
    wrong_secret = {**secret, "client_secret": "x" * 40}
    ledger.call(route, route[1], actor["review-system"], 401, json=wrong_secret)

    # A request, its reviews, a search under it and the operator's examination.
    route = ("POST", "/v1/requests")

    def clerk_submits(body: dict[str, Any], submitting: tuple[str, str] = route) -> int:
        submitted = ledger.call(
            submitting, submitting[1], actor["rita.records"], 201, headers=clerk, json=body
        )
        return int(submitted.json()["id"])

    request_id = clerk_submits(request_body())
    refused_three_ways(route, route[1], "rita.records", json=request_body())

    route, path = (
        ("POST", "/v1/requests/{request_id}/reviews"),
        f"/v1/requests/{request_id}/reviews",
    )
    approve = {"decision": "approve", "reason": "meets the policy"}
    first_reviewer = REVIEWERS[Role.staff_reviewer]
    refused_three_ways(route, path, first_reviewer, json=approve)
    for role in (Role.staff_reviewer, Role.manager, Role.unit_administrator):
        reviewer = REVIEWERS[role]
        body = approve | (
            {"operators": ["olga.operator"]} if role is Role.unit_administrator else {}
        )
        ledger.call(route, path, actor[reviewer], 201, headers=staff.headers(reviewer), json=body)
    ledger.call(route, path, actor[reviewer], 409, headers=staff.headers(reviewer), json=body)

    route = ("PUT", "/v1/requests/{request_id}/court-order")
    ordered = request_body(legal_process="court_order", court_order=COURT_ORDER)
    ordered_id = clerk_submits(ordered)
    path = f"/v1/requests/{ordered_id}/court-order"
    document = {"document": ("order.pdf", COURT_ORDER_DOCUMENT)}
    refused_three_ways(route, path, "rita.records", files=document)
    other = {"document": ("order.pdf", b"%PDF-1.7\nsome other order\n")}
    ledger.call(route, path, actor["rita.records"], 422, headers=clerk, files=other)
    ledger.call(route, path, actor["rita.records"], 204, headers=clerk, files=document)
    ledger.call(route, path, actor["rita.records"], 409, headers=clerk, files=document)

    route = ("POST", "/v1/requests/{request_id}/searches")
    path = f"/v1/requests/{request_id}/searches"
    probe = {"probe": ("probe", sample("obama_small.jpg"))}
    refused_three_ways(route, path, "olga.operator", files=probe)
    junk = {"probe": ("probe", b"not a photo")}
    ledger.call(route, path, actor["olga.operator"], 422, headers=operator, files=junk)
    found = ledger.call(
        route, path, actor["olga.operator"], 201, headers=operator, files=probe
    ).json()
    search_id = found["search_id"]
    ledger.call(route, path, actor["olga.operator"], 403, headers=operator, files=probe)  # spent

    route, path = (
        ("POST", "/v1/searches/{search_id}/verification"),
        f"/v1/searches/{search_id}/verification",
    )
    refused_three_ways(route, path, "olga.operator")
    ledger.call(route, path, actor["olga.operator"], 409, headers=operator)  # one examiner

    route, path = (
        ("POST", "/v1/searches/{search_id}/examination"),
        f"/v1/searches/{search_id}/examination",
    )
    nobody = conclusions(found, identify=None)
    refused_three_ways(route, path, "olga.operator", json=nobody)
    stranger = conclusions({"candidates": [{"rank": 1, "ref": "not-a-candidate"}]})
    ledger.call(route, path, actor["olga.operator"], 422, headers=operator, json=stranger)
    ledger.call(route, path, actor["olga.operator"], 200, headers=operator, json=nobody)
    ledger.call(route, path, actor["olga.operator"], 409, headers=operator, json=nobody)

    route, path = (
        ("POST", "/v1/searches/{search_id}/release"),
        f"/v1/searches/{search_id}/release",
    )
    refused_three_ways(route, path, "olga.operator")
    ledger.call(route, path, actor["olga.operator"], 404, headers=operator)  # nobody released

    # An independent tester's evaluation, queued (the runner stopped, so that nothing but
    # these calls writes an entry meanwhile).
    assert isinstance(client.app, FastAPI)
    client.app.state.evaluations.stop()
    staff.add("tess.tester", Role.independent_tester)
    tester = staff.headers("tess.tester")
    route = ("POST", "/v1/evaluations")
    zipped_set = {"content": zipped(lfw_gendered(4, per_person=2))}
    as_zip = {"Content-Type": "application/zip"}
    ledger.call(route, route[1], "anonymous", 401, headers=as_zip, **zipped_set)
    ledger.call(route, route[1], actor["rita.records"], 403, headers=clerk | as_zip, **zipped_set)
    tess = f"account:{staff.ids['tess.tester']}"
    ledger.call(route, route[1], tess, 415, headers=tester, json={})
    ledger.call(route, route[1], tess, 422, headers=tester | as_zip, content=b"not a zip")
    ledger.call(route, route[1], tess, 202, headers=tester | as_zip, **zipped_set)
    ledger.call(route, route[1], tess, 429, headers=tester | as_zip, **zipped_set)

    every = {
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()
        for method in operations
        if method.upper() in STATE_CHANGING
    }
    assert ledger.covered == every, "a state-changing route is not walked here"
