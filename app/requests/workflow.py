"""The life of a request: submission and screening, the court order's document, and the
review chain. The rules come from app.requests.rules and .screening; this module applies
them to the database and records each event in the audit log, in the same transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.accounts.models import Account
from app.accounts.service import actor_of
from app.audit import trail
from app.core.refusals import Code, Refusal
from app.requests.models import AgencyRequest, AssignedOperator, CourtOrderDocument, Review
from app.requests.rules import (
    Decision,
    LegalProcess,
    Status,
    awaiting,
    check_review,
    status_after,
)
from app.requests.schemas import NewRequest
from app.requests.screening import (
    AgencyFacts,
    CourtOrderFacts,
    Facts,
    RequestPolicy,
    ScreeningOutcome,
    screen,
)
from auth import Level, Role
from index import SealingError, TemplateKeys


@dataclass(frozen=True)
class ApprovalPolicy:
    """What the last approval authorises (rule 7): this many searches, for this long."""

    searches: int
    lasts: timedelta


COMPONENT = "requests"


def request_ref(request_id: int) -> str:
    return f"request:{request_id}"


def submit(
    session: Session, body: NewRequest, policy: RequestPolicy, submitter: int
) -> AgencyRequest:
    """Store a request and screen it (rules 2-4): it goes to review, or is rejected for good."""
    order = body.court_order
    on_behalf = body.information_for
    screening = screen(
        Facts(
            agency=AgencyFacts(body.agency_code, body.agency_name),
            information_for=AgencyFacts(on_behalf.code, on_behalf.name) if on_behalf else None,
            declared_immigration_authority=body.immigration_authority,
            crime_category=body.crime.category,
            statutes=body.crime.statutes,
            court_order=CourtOrderFacts(order.court, order.judge, order.signed_on)
            if order is not None
            else None,
            today=datetime.now(UTC).date(),
        ),
        policy,
    )
    request = AgencyRequest(
        submitted_by=submitter,
        agency_name=body.agency_name,
        agency_code=body.agency_code,
        agency_kind=body.agency_kind,
        information_for_name=on_behalf.name if on_behalf else None,
        information_for_code=on_behalf.code if on_behalf else None,
        immigration_authority=screening.immigration_authority,
        case_number=body.case_number,
        requesting_officer=body.requesting_officer,
        crime_category=body.crime.category,
        statutes=list(body.crime.statutes),
        legal_process=body.legal_process,
        court=order.court if order else None,
        judge=order.judge if order else None,
        order_signed_on=order.signed_on if order else None,
        order_sha256=order.document_sha256 if order else None,
        narrative=body.narrative,
        immigration_related=screening.immigration_related,
        screening_outcome=ScreeningOutcome.passed
        if screening.passed
        else ScreeningOutcome.rejected,
        screening_rule=screening.rule,
        screening_reason=screening.reason,
        status=Status.in_review if screening.passed else Status.rejected,
    )
    session.add(request)
    session.flush()
    trail.record(
        session,
        COMPONENT,
        "request.submit",
        actor_of(submitter),
        "success",
        request_ref(request.id),
        screening=request.screening_outcome,
        rule=screening.rule,
        immigration_related=screening.immigration_related,
    )
    return request


def get_request(session: Session, request_id: int) -> AgencyRequest:
    request = session.scalar(
        select(AgencyRequest)
        .where(AgencyRequest.id == request_id)
        .options(selectinload(AgencyRequest.reviews).selectinload(Review.reviewer))
    )
    if request is None:
        raise Refusal(Code.request_not_found, "There is no such request.")
    return request


def involved_in(request: AgencyRequest) -> set[int]:
    """Who submitted or reviewed the request: none of them may search it or verify a search
    under it (separation of duties)."""
    return {request.submitted_by} | {r.reviewer_id for r in request.reviews}


def awaiting_review(session: Session, level: Level) -> list[AgencyRequest]:
    """The requests in review whose next decision is `level`'s, oldest first: a reviewer's
    queue."""
    in_review = session.scalars(
        select(AgencyRequest)
        .where(AgencyRequest.status == Status.in_review)
        .options(selectinload(AgencyRequest.reviews))
        .order_by(AgencyRequest.submitted_at)
    ).all()
    return [
        r for r in in_review if awaiting(r.status, r.immigration_related, len(r.reviews)) is level
    ]


def assigned_to(session: Session, operator: int, now: datetime) -> list[AgencyRequest]:
    """The approved requests an operator is assigned to search, still authorised, with
    searches left: an operator's work."""
    return list(
        session.scalars(
            select(AgencyRequest)
            .join(AssignedOperator)
            .where(
                AssignedOperator.operator_id == operator,
                AgencyRequest.status == Status.approved,
                AgencyRequest.authorised_until > now,
                AgencyRequest.searches_used < AgencyRequest.searches_allowed,
            )
            .order_by(AgencyRequest.authorised_until)
        )
    )


def _assignable_operators(
    session: Session, request: AgencyRequest, usernames: Sequence[str]
) -> list[Account]:
    """The operators the unit administrator's approval assigns: active operator accounts
    that neither submitted nor reviewed the request."""
    if not usernames:
        raise Refusal(
            Code.operators_required,
            "The unit administrator's approval names the operator (or operators) assigned to "
            "search under the request.",
        )
    operators = list(
        session.scalars(
            select(Account).where(
                Account.username.in_(usernames),
                Account.role == Role.operator,
                Account.active.is_(True),
            )
        )
    )
    missing = sorted(set(usernames) - {o.username for o in operators})
    if missing:
        raise Refusal(Code.unknown_operator, f"{missing[0]} is not an active operator's account.")
    involved = involved_in(request)
    if any(o.id in involved for o in operators):
        raise Refusal(
            Code.separation_of_duties,
            "An operator who submitted or reviewed the request may not search under it.",
        )
    return operators


# The formats a court order's document is accepted in, known by their first bytes.
_DOCUMENT_TYPES = {
    b"%PDF-": "application/pdf",
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
}


def _court_order_context(request_id: int, sha256: str) -> str:
    return f"court_order:{request_id}:{sha256}"


def attach_court_order(
    session: Session, request_id: int, uploader: int, data: bytes, keys: TemplateKeys
) -> CourtOrderDocument:
    """Keep the court order's document, sealed, once its SHA-256 is shown to be the one the
    request declared: by the account that submitted the request, before the first review."""
    request = get_request(session, request_id)
    if request.submitted_by != uploader:
        raise Refusal(
            Code.not_submitter, "Only the account that submitted the request may add to it."
        )
    if request.legal_process != LegalProcess.court_order or request.order_sha256 is None:
        raise Refusal(Code.no_court_order, "This request declares no court order.")
    if request.court_order_document is not None or request.reviews:
        raise Refusal(
            Code.court_order_closed,
            "The court order's document is on file already, or review has begun.",
        )
    media_type = next((t for magic, t in _DOCUMENT_TYPES.items() if data.startswith(magic)), None)
    if media_type is None:
        raise Refusal(
            Code.unsupported_media_type, "A court order is accepted as a PDF, JPEG or PNG file."
        )
    if hashlib.sha256(data).hexdigest() != request.order_sha256:
        raise Refusal(
            Code.court_order_mismatch,
            "The document's SHA-256 is not the one the request declared for its court order.",
        )
    document = CourtOrderDocument(
        request_id=request.id,
        media_type=media_type,
        size=len(data),
        sealed=keys.seal(data, _court_order_context(request.id, request.order_sha256)),
        uploaded_by=uploader,
    )
    session.add(document)
    session.flush()
    trail.record(
        session,
        COMPONENT,
        "court_order.upload",
        actor_of(uploader),
        "success",
        request_ref(request.id),
        bytes=len(data),
    )
    return document


def court_order_document(
    session: Session, request_id: int, reader: int, keys: TemplateKeys
) -> tuple[bytes, str]:
    """The court order's document, opened, for a reviewer to read; the read is audited."""
    request = get_request(session, request_id)
    document = request.court_order_document
    if document is None or request.order_sha256 is None:
        raise Refusal(
            Code.court_order_not_found, "No court order document is on file for this request."
        )
    try:
        data = keys.open(document.sealed, _court_order_context(request.id, request.order_sha256))
    except SealingError:
        raise Refusal(
            Code.court_order_unreadable,
            "The court order's document on file was changed, or was sealed under a key not "
            "configured; ask the agency to send it again.",
        ) from None
    trail.record(
        session, COMPONENT, "court_order.read", actor_of(reader), "success", request_ref(request.id)
    )
    return data, document.media_type


def reseal_court_orders(session: Session, keys: TemplateKeys) -> int:
    """Re-seal every court order document not sealed under the current key (a rotation)."""
    resealed = 0
    for document in session.scalars(select(CourtOrderDocument)):
        if not keys.is_current(document.sealed):
            request = session.get_one(AgencyRequest, document.request_id)
            assert request.order_sha256 is not None
            context = _court_order_context(request.id, request.order_sha256)
            document.sealed = keys.seal(keys.open(document.sealed, context), context)
            resealed += 1
    return resealed


def review(
    session: Session,
    request_id: int,
    reviewer: Account,
    via_system: int | None,
    decision: Decision,
    reason: str,
    operators: Sequence[str],
    approvals: ApprovalPolicy,
) -> AgencyRequest:
    """Record one level's decision (rules 5-7 and separation of duties); the unit
    administrator's approval assigns the operators who may search."""
    request = get_request(session, request_id)
    level = check_review(
        request.status,
        request.immigration_related,
        [r.level for r in request.reviews],
        {r.reviewer_id for r in request.reviews},
        request.submitted_by,
        reviewer.id,
        reviewer.role,
    )
    if request.legal_process == LegalProcess.court_order and request.court_order_document is None:
        raise Refusal(
            Code.court_order_missing,
            "The court order's document has not been uploaded; reviewers decide with it.",
        )
    assigned: list[Account] = []
    if level is Level.unit_administrator and decision is Decision.approve:
        assigned = _assignable_operators(session, request, operators)
        request.operators.extend(AssignedOperator(operator_id=o.id) for o in assigned)
    elif operators:
        raise Refusal(
            Code.operators_not_assigned_here,
            "Only the unit administrator's approval assigns operators.",
        )
    request.reviews.append(
        Review(
            level=level,
            reviewer_id=reviewer.id,
            via_system_id=via_system,
            decision=decision,
            reason=reason,
        )
    )
    status = status_after(decision, level, request.immigration_related)
    request.status = status
    if status is Status.approved:
        request.searches_allowed = approvals.searches
        request.authorised_until = datetime.now(UTC) + approvals.lasts
    trail.record(
        session,
        COMPONENT,
        "request.review",
        actor_of(reviewer.id),
        decision,
        request_ref(request.id),
        level=level,
        via=actor_of(via_system) if via_system else None,
        status=status,
        operators=",".join(actor_of(o.id) for o in assigned) or None,
    )
    session.flush()
    return request
