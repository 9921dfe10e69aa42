"""The permission matrix: every route, called as every role and with every kind of bad
token, answers with exactly the status written here. The table is spelt out by hand, not
derived from auth.roles, so a change to who may do what must change this test too."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.core.settings import Settings
from auth import Role, SubjectKind, TokenIssuer
from tests.support.data import sample
from tests.support.requests import request_body
from tests.support.staff import Staff, bearer

R = Role
PEOPLE = [r for r in Role if r is not Role.review_system]
MISSING = 999_999


# The bad-token columns, and what every route that needs a token answers them.
BAD_TOKENS = {
    "no token": "401 not_authenticated",
    "expired": "401 token_expired",
    "other key": "401 invalid_token",
    "disabled": "401 account_disabled",
}
NO_MFA = [f"no second factor: {r.value}" for r in PEOPLE]
COLUMNS = [*(r.value for r in Role), *NO_MFA, *BAD_TOKENS]


def everyone(answer: str, *, signed_in: str | None = None) -> dict[str, str]:
    """A route open to all: `signed_in` is the answer to any valid token, if it differs."""
    row = {column: answer for column in COLUMNS}
    if signed_in is not None:
        row.update({c: signed_in for c in COLUMNS if c not in BAD_TOKENS})
        row.update(BAD_TOKENS)
    return row


def only(allowed: dict[Role, str]) -> dict[str, str]:
    """A protected route: the allowed roles get their answer, other roles and people without
    the second factor a 403, a missing or bad token a 401."""
    row = {r.value: allowed.get(r, "403 forbidden") for r in Role}
    row.update({c: "403 mfa_required" for c in NO_MFA})
    row.update(BAD_TOKENS)
    return row


REVIEWERS = {R.staff_reviewer, R.manager, R.unit_administrator, R.director, R.governor_office}
MATRIX: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/v1/health"): everyone("200"),
    # Only the scrape token opens the metrics: no one's access token is it.
    ("GET", "/metrics"): everyone("401 invalid_scrape_token"),
    ("POST", "/v1/auth/login"): everyone("401 invalid_credentials"),  # wrong password
    ("POST", "/v1/auth/token"): everyone("401 invalid_credentials"),  # wrong secret
    ("POST", "/v1/auth/totp"): everyone("401", signed_in="409"),  # already set up
    ("POST", "/v1/auth/totp/confirm"): everyone("401", signed_in="409"),  # nothing pending
    ("POST", "/v1/auth/activate"): everyone("401 invalid_activation"),  # no such code
    # A person's own password: the current one given is wrong.
    ("POST", "/v1/auth/password"): only({r: "422" for r in PEOPLE})
    | {R.review_system.value: "403 forbidden"},
    ("POST", "/v1/accounts"): only({R.admin: "202"}),
    ("GET", "/v1/accounts"): only({R.admin: "200"}),
    ("PATCH", "/v1/accounts/{account_id}"): only({R.admin: "404"}),
    ("POST", "/v1/accounts/{account_id}/reset"): only({R.admin: "404"}),
    ("POST", "/v1/accounts/{account_id}/training"): only({R.admin: "404"}),
    ("GET", "/v1/account-changes"): only({R.admin: "200"}),
    ("POST", "/v1/account-changes/{change_id}/approve"): only({R.admin: "404"}),
    ("POST", "/v1/account-changes/{change_id}/reject"): only({R.admin: "404"}),
    ("POST", "/v1/requests"): only({R.review_system: "201", R.records_clerk: "201"}),
    ("GET", "/v1/requests/{request_id}"): only(
        {r: "404" for r in [*REVIEWERS, R.review_system, R.records_clerk, R.operator, R.auditor]}
    ),
    # Only the reviewer decides: the review system alone is refused.
    ("POST", "/v1/requests/{request_id}/reviews"): only({r: "404" for r in REVIEWERS}),
    ("PUT", "/v1/requests/{request_id}/court-order"): only(
        {R.review_system: "404", R.records_clerk: "404"}
    ),
    ("GET", "/v1/requests/{request_id}/court-order"): only({r: "404" for r in REVIEWERS}),
    ("POST", "/v1/requests/{request_id}/searches"): only({R.operator: "404"}),
    ("GET", "/v1/searches/verification"): only({R.operator: "200"}),
    ("GET", "/v1/searches/{search_id}"): only({R.operator: "404"}),
    ("GET", "/v1/searches/{search_id}/probe"): only({R.operator: "404"}),
    ("GET", "/v1/searches/{search_id}/candidates/{ref}/photos/{number}"): only({R.operator: "404"}),
    ("POST", "/v1/searches/{search_id}/verification"): only({R.operator: "404"}),
    ("POST", "/v1/searches/{search_id}/examination"): only({R.operator: "404"}),
    ("POST", "/v1/searches/{search_id}/release"): only({R.operator: "404"}),
    # Only the system that passed a search on reads its outcome; never a candidate.
    ("GET", "/v1/searches/{search_id}/outcome"): only({R.review_system: "404"}),
    ("GET", "/v1/disclosures"): only({R.records_clerk: "200", R.auditor: "200"}),
    ("GET", "/v1/reports/transparency"): only({R.auditor: "200"}),
    ("GET", "/v1/reports/accountability"): only({R.auditor: "200"}),
    ("GET", "/v1/operating-point"): only({R.auditor: "200"}),
    # An independent tester's own evaluations, and nobody else's.
    ("POST", "/v1/evaluations"): only({R.independent_tester: "415"}),  # JSON, not a ZIP
    ("GET", "/v1/evaluations"): only({R.independent_tester: "200"}),
    ("GET", "/v1/evaluations/{job_id}"): only({R.independent_tester: "404"}),
    ("GET", "/v1/audit"): only({R.auditor: "200"}),
    ("GET", "/v1/audit/verify"): only({R.auditor: "200"}),
}


def answer(response: Any) -> str:
    """The status, and for a 401 or 403 the code that says why."""
    if response.status_code in (401, 403):
        return f"{response.status_code} {response.json()['code']}"
    return str(response.status_code)


_usernames = (f"new.account{n}" for n in itertools.count())


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    """One call per route that an allowed caller gets through, to a known answer."""
    target = path.format(
        account_id=MISSING,
        request_id=MISSING,
        search_id=MISSING,
        change_id=MISSING,
        job_id=MISSING,
        ref="a-ref",
        number=1,
    )
    body: dict[str, Any] = {
        "/v1/auth/login": {"username": "nobody", "password": "wrong password"},
        "/v1/auth/token": {"client_id": "nobody", "client_secret": "wrong"},
        "/v1/auth/totp/confirm": {"code": "000000"},
        "/v1/auth/activate": {
            "username": "nobody",
            "activation_code": "AAAA-BBBB",
            "password": "quartz lantern meadow 91",
        },
        "/v1/auth/password": {
            "current_password": "not the password",
            "new_password": "quartz lantern meadow 91",
        },
        "/v1/accounts": {"username": next(_usernames), "role": "auditor"},
        f"/v1/accounts/{MISSING}": {"active": True},
        f"/v1/accounts/{MISSING}/training": {
            "course": "c",
            "completed_on": "2026-01-01",
            "expires_on": "2027-01-01",
        },
        "/v1/requests": request_body(),
        f"/v1/requests/{MISSING}/reviews": {"decision": "approve", "reason": "fine"},
        f"/v1/searches/{MISSING}/examination": {"conclusions": []},
    }
    query = {
        "/v1/disclosures": {"license_number": "WDL0000001"},
        "/v1/reports/transparency": {"from": "2026-01-01", "to": "2027-01-01"},
    }
    if target.endswith("/searches"):
        files = {"probe": ("probe.jpg", sample("obama.jpg"))}
        return client.request(method, target, headers=headers, files=files)
    if target.endswith("/court-order") and method == "PUT":
        files = {"document": ("order.pdf", b"%PDF-1.7\n")}
        return client.request(method, target, headers=headers, files=files)
    return client.request(
        method, target, headers=headers, json=body.get(target), params=query.get(target)
    )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Every column signs in as the same username: the rate limit is not what this tests.
    Metrics are served, to a scraper with a token none of the columns holds."""
    return settings.model_copy(
        update={"login_rate_limit": "1000/minute", "metrics_token": SecretStr("s" * 40)}
    )


def column_headers(staff: Staff, settings: Settings) -> dict[str, dict[str, str]]:
    for role in Role:
        staff.add(role.value.replace("_", "-"), role)
    staff.add("dora.disabled", Role.admin)
    staff.disable("dora.disabled")
    admin = staff.ids["admin"]
    # Signed with the service's own key, but an hour ago.
    assert settings.jwt_key is not None
    signer = TokenIssuer(settings.jwt_key.get_secret_value(), timedelta(minutes=15))
    expired = signer.issue(
        admin, Role.admin, SubjectKind.person, True, 0, now=datetime.now(UTC) - timedelta(hours=1)
    )
    forged = TokenIssuer("some-other-key-" + "z" * 32, timedelta(minutes=15)).issue(
        admin, Role.admin, SubjectKind.person, True, 0
    )
    columns = {role.value: staff.headers(role.value.replace("_", "-")) for role in Role}
    columns |= {
        f"no second factor: {r.value}": staff.headers(r.value.replace("_", "-"), mfa=False)
        for r in PEOPLE
    }
    columns |= {
        "no token": {},
        "expired": bearer(expired),
        "other key": bearer(forged),
        "disabled": staff.headers("dora.disabled"),
    }
    return columns


def test_every_route_answers_every_caller_exactly_as_the_matrix_says(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    assert isinstance(client.app, FastAPI)
    routes = {
        (method.upper(), path)
        for path, operations in client.app.openapi()["paths"].items()
        for method in operations
    }
    assert routes == set(MATRIX), "a route is missing from the matrix, or the matrix is stale"
    columns = column_headers(staff, settings)
    actual = {
        (method, path): {
            column: answer(call(client, method, path, headers))
            for column, headers in columns.items()
        }
        for method, path in MATRIX
    }
    mismatches = [
        f"{method} {path} as {column}: {actual[(method, path)][column]}, expected {status}"
        for (method, path), row in MATRIX.items()
        for column, status in row.items()
        if actual[(method, path)][column] != status
    ]
    assert not mismatches, "\n".join(mismatches)
