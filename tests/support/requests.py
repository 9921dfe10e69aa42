"""Agency requests as the tests send them: a body that passes screening, a court order and
its document, and the review chain walked by the agency's reviewers. The walk takes a
`Staff` of either back end and any HTTP client of the service."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import httpx

from app.enrolment.demo import demo_request
from app.requests.rules import required_levels
from auth import LEVEL_ROLE, Role
from tests.support.staff import REVIEWERS, Staff

# A request that passes screening: a local police narcotics case with a subpoena.
request_body = demo_request


# A court order's document as an agency would send it (a PDF), and the order it is.
COURT_ORDER_DOCUMENT = b"%PDF-1.7\n% Order authorising release of identifying information\n%%EOF\n"
COURT_ORDER = {
    "court": "U.S. District Court, W.D. Wash.",
    "judge": "Hon. M. Chen",
    "signed_on": str(date.today() - timedelta(days=9)),
    "document_sha256": hashlib.sha256(COURT_ORDER_DOCUMENT).hexdigest(),
}


def upload_court_order(
    client: httpx.Client,
    headers: dict[str, str],
    request_id: int,
    document: bytes = COURT_ORDER_DOCUMENT,
) -> httpx.Response:
    return client.put(
        f"/v1/requests/{request_id}/court-order",
        headers=headers,
        files={"document": ("order.pdf", document, "application/pdf")},
    )


def review(
    client: httpx.Client,
    staff: Staff,
    request_id: int,
    reviewer: str,
    decision: str = "approve",
    *,
    operators: Sequence[str] = ("olga.operator",),
) -> httpx.Response:
    """`reviewer` decides at their level, calling directly; a unit administrator's approval
    assigns `operators`."""
    body: dict[str, Any] = {"decision": decision, "reason": "meets the policy"}
    if decision == "approve" and staff.roles[reviewer] is Role.unit_administrator:
        body["operators"] = list(operators)
    return client.post(
        f"/v1/requests/{request_id}/reviews", headers=staff.headers(reviewer), json=body
    )


def approve(
    client: httpx.Client,
    staff: Staff,
    request_id: int,
    *,
    immigration_related: bool = False,
    operators: Sequence[str] = ("olga.operator",),
) -> dict[str, Any]:
    """Every level the request needs approves it in turn, each reviewer of REVIEWERS calling
    directly, the unit administrator assigning `operators`: the request as the last review
    left it."""
    for level in required_levels(immigration_related):
        reviewed = review(
            client, staff, request_id, REVIEWERS[LEVEL_ROLE[level]], operators=operators
        )
        assert reviewed.status_code == 201, reviewed.json()
    result: dict[str, Any] = reviewed.json()
    return result


def approved_request(client: httpx.Client, staff: Staff, submitter: str = "review-system") -> int:
    """A request `submitter` sends (a local narcotics case), approved by the three levels it
    needs, the unit administrator assigning Olga."""
    submitted = client.post("/v1/requests", headers=staff.headers(submitter), json=request_body())
    assert submitted.status_code == 201, submitted.json()
    request_id = int(submitted.json()["id"])
    approve(client, staff, request_id)
    return request_id
