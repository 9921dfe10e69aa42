"""The life of a request: submission and screening, the review chain, the gated search, the
operator's decision and the disclosure it may make. The rules come from app.rules; this
module applies them to the database and records each event in the audit log, in the same
transaction as the change."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from app import audit
from app.accounts import actor_of, trained
from app.config import Settings
from app.errors import ApiError
from app.gallery import Hits
from app.models import (
    Account,
    AgencyRequest,
    AssignedOperator,
    CourtOrderDocument,
    Disclosure,
    LicenseRecord,
    Review,
    Search,
    SearchCandidate,
)
from app.rules import (
    AgencyFacts,
    CourtOrderFacts,
    Decision,
    Facts,
    LegalProcess,
    Level,
    RequestPolicy,
    Status,
    check_review,
    check_search,
    screen,
    status_after,
)
from app.schemas import NewRequest
from auth import Role
from index import SealingError, TemplateKeys
from matcher import MatchRule

COMPONENT = "requests"


def request_ref(request_id: int) -> str:
    return f"request:{request_id}"


def search_ref(search_id: int) -> str:
    return f"search:{search_id}"


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
        agency_kind=body.agency_kind.value,
        information_for_name=on_behalf.name if on_behalf else None,
        information_for_code=on_behalf.code if on_behalf else None,
        immigration_authority=screening.immigration_authority,
        case_number=body.case_number,
        requesting_officer=body.requesting_officer,
        crime_category=body.crime.category,
        statutes=list(body.crime.statutes),
        legal_process=body.legal_process.value,
        court=order.court if order else None,
        judge=order.judge if order else None,
        order_signed_on=order.signed_on if order else None,
        order_sha256=order.document_sha256 if order else None,
        narrative=body.narrative,
        immigration_related=screening.immigration_related,
        screening_outcome="passed" if screening.passed else "rejected",
        screening_rule=screening.rule,
        screening_reason=screening.reason,
        status=(Status.in_review if screening.passed else Status.rejected).value,
    )
    session.add(request)
    session.flush()
    audit.record(
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
        raise ApiError(404, "request_not_found", "There is no such request.")
    return request


def _assignable_operators(
    session: Session, request: AgencyRequest, usernames: Sequence[str]
) -> list[Account]:
    """The operators the unit administrator's approval assigns: active operator accounts
    that neither submitted nor reviewed the request."""
    if not usernames:
        raise ApiError(
            422,
            "operators_required",
            "The unit administrator's approval names the operator (or operators) assigned to "
            "search under the request.",
        )
    operators = list(
        session.scalars(
            select(Account).where(
                Account.username.in_(usernames),
                Account.role == Role.operator.value,
                Account.active.is_(True),
            )
        )
    )
    missing = sorted(set(usernames) - {o.username for o in operators})
    if missing:
        raise ApiError(
            422, "unknown_operator", f"{missing[0]} is not an active operator's account."
        )
    involved = {request.submitted_by} | {r.reviewer_id for r in request.reviews}
    if any(o.id in involved for o in operators):
        raise ApiError(
            403,
            "separation_of_duties",
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
        raise ApiError(
            403, "not_submitter", "Only the account that submitted the request may add to it."
        )
    if request.legal_process != LegalProcess.court_order or request.order_sha256 is None:
        raise ApiError(409, "no_court_order", "This request declares no court order.")
    if request.court_order_document is not None or request.reviews:
        raise ApiError(
            409,
            "court_order_closed",
            "The court order's document is on file already, or review has begun.",
        )
    media_type = next((t for magic, t in _DOCUMENT_TYPES.items() if data.startswith(magic)), None)
    if media_type is None:
        raise ApiError(
            415, "unsupported_media_type", "A court order is accepted as a PDF, JPEG or PNG file."
        )
    if hashlib.sha256(data).hexdigest() != request.order_sha256:
        raise ApiError(
            422,
            "court_order_mismatch",
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
    audit.record(
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
        raise ApiError(
            404, "court_order_not_found", "No court order document is on file for this request."
        )
    try:
        data = keys.open(document.sealed, _court_order_context(request.id, request.order_sha256))
    except SealingError:
        raise ApiError(
            409,
            "court_order_unreadable",
            "The court order's document on file was changed, or was sealed under a key not "
            "configured; ask the agency to send it again.",
        ) from None
    audit.record(
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
    settings: Settings,
) -> AgencyRequest:
    """Record one level's decision (rules 5-7 and separation of duties); the unit
    administrator's approval assigns the operators who may search."""
    request = get_request(session, request_id)
    level = check_review(
        Status(request.status),
        request.immigration_related,
        [r.level for r in request.reviews],
        {r.reviewer_id for r in request.reviews},
        request.submitted_by,
        reviewer.id,
        Role(reviewer.role),
    )
    if request.legal_process == LegalProcess.court_order and request.court_order_document is None:
        raise ApiError(
            409,
            "court_order_missing",
            "The court order's document has not been uploaded; reviewers decide with it.",
        )
    assigned: list[Account] = []
    if level is Level.unit_administrator and decision is Decision.approve:
        assigned = _assignable_operators(session, request, operators)
        request.operators.extend(AssignedOperator(operator_id=o.id) for o in assigned)
    elif operators:
        raise ApiError(
            422,
            "operators_not_assigned_here",
            "Only the unit administrator's approval assigns operators.",
        )
    request.reviews.append(
        Review(
            level=level.value,
            reviewer_id=reviewer.id,
            via_system_id=via_system,
            decision=decision.value,
            reason=reason,
        )
    )
    status = status_after(decision, level, request.immigration_related)
    request.status = status.value
    if status is Status.approved:
        request.searches_allowed = settings.authorised_searches
        request.authorised_until = datetime.now(UTC) + timedelta(days=settings.authorisation_days)
    audit.record(
        session,
        COMPONENT,
        "request.review",
        actor_of(reviewer.id),
        decision.value,
        request_ref(request.id),
        level=level.value,
        via=actor_of(via_system) if via_system else None,
        status=status.value,
        operators=",".join(actor_of(o.id) for o in assigned) or None,
    )
    session.flush()
    return request


def authorise_search(session: Session, request_id: int, operator: int, course: str) -> None:
    """Refuse, with the specific reason, a search the operator may not make now."""
    if not trained(session, operator, course):
        raise ApiError(403, "training_expired", "Your face-search certification is not current.")
    request = get_request(session, request_id)
    check_search(
        Status(request.status),
        request.authorised_until,
        request.searches_used,
        request.searches_allowed,
        datetime.now(UTC),
        operator,
        {request.submitted_by} | {r.reviewer_id for r in request.reviews},
        {a.operator_id for a in request.operators},
    )


def record_search(
    session: Session,
    request_id: int,
    operator: int,
    via_system: int | None,
    probe_sha256: str,
    model_id: str,
    rule: MatchRule,
    operating_point_sha256: str,
    hits: Hits,
    course: str,
) -> Search:
    """Spend one of the request's searches and record the search, the rule that chose its
    candidates (with the SHA-256 of the operating point behind it), and the candidates.

    The count goes up only where a search is left, in one statement, so two searches at
    once cannot both spend the last one.
    """
    now = datetime.now(UTC)
    spent = session.execute(
        update(AgencyRequest)
        .where(
            AgencyRequest.id == request_id,
            AgencyRequest.status == Status.approved.value,
            AgencyRequest.searches_used < AgencyRequest.searches_allowed,
            AgencyRequest.authorised_until > now,
        )
        .values(searches_used=AgencyRequest.searches_used + 1)
    )
    if spent.rowcount != 1:
        authorise_search(session, request_id, operator, course)  # raises the reason
        raise ApiError(409, "conflict", "The request changed during the search; try again.")
    search = Search(
        request_id=request_id,
        operator_id=operator,
        via_system_id=via_system,
        probe_sha256=probe_sha256,
        model_id=model_id,
        index_revision=hits.index_revision,
        threshold=rule.threshold,
        margin=rule.margin,
        operating_point_sha256=operating_point_sha256,
        candidates=[
            SearchCandidate(rank=rank, record_id=record.id, distance=distance)
            for rank, (record, distance) in enumerate(hits.matches, start=1)
        ],
    )
    session.add(search)
    session.flush()
    audit.record(
        session,
        COMPONENT,
        "search",
        actor_of(operator),
        "success",
        search_ref(search.id),
        request=request_ref(request_id),
        via=actor_of(via_system) if via_system else None,
        model_id=model_id,
        index_revision=hits.index_revision,
        candidates=len(search.candidates),
    )
    return search


def decide(
    session: Session, search_id: int, operator: int, confirmed_rank: int | None
) -> tuple[Search, LicenseRecord | None]:
    """The operator's human review: confirm one candidate, which discloses that person's
    five fields to the requesting agency, or none, which discloses nothing."""
    search = session.get(Search, search_id)
    if search is None:
        raise ApiError(404, "search_not_found", "There is no such search.")
    if search.operator_id != operator:
        raise ApiError(
            403, "not_search_operator", "Only the operator who ran the search may decide on it."
        )
    if search.decision is not None:
        raise _already_decided()
    if search.candidates_purged_at is not None:
        raise ApiError(
            409,
            "candidates_purged",
            "This search's candidate list was deleted under the retention policy; "
            "nobody can be confirmed from it.",
        )
    record = None
    if confirmed_rank is not None:
        candidate = next((c for c in search.candidates if c.rank == confirmed_rank), None)
        if candidate is None:
            raise ApiError(
                422, "no_such_candidate", f"The search has no candidate at rank {confirmed_rank}."
            )
        if candidate.record is None:
            raise ApiError(
                409, "record_purged", "That candidate's licence record has since been purged."
            )
        record = candidate.record
    # One conditional write decides: of two decisions sent at once, exactly one wins.
    outcome = "confirmed" if record is not None else "none"
    decided = session.execute(
        update(Search)
        .where(Search.id == search.id, Search.decision.is_(None))
        .values(decision=outcome, confirmed_rank=confirmed_rank, decided_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if decided.rowcount != 1:
        raise _already_decided()
    session.refresh(search)
    disclosure = None
    if record is not None:
        request = session.get(AgencyRequest, search.request_id)
        assert request is not None
        disclosure = Disclosure(
            search_id=search.id,
            request_id=search.request_id,
            record_id=record.id,
            license_number=record.license_number,
            agency_name=request.agency_name,
            released_by=operator,
        )
        session.add(disclosure)
        session.flush()
    # One entry for the decision and, when it confirmed someone, the release it made.
    audit.record(
        session,
        COMPONENT,
        "search.decision",
        actor_of(operator),
        search.decision,
        search_ref(search.id),
        request=request_ref(search.request_id),
        disclosure=f"disclosure:{disclosure.id}" if disclosure else None,
        record=f"license_record:{record.id}" if record else None,
    )
    return search, record


def _already_decided() -> ApiError:
    return ApiError(409, "already_decided", "This search has already been decided.")


def disclosures_of(session: Session, license_number: str) -> list[Disclosure]:
    return list(
        session.scalars(
            select(Disclosure)
            .where(Disclosure.license_number == license_number)
            .options(selectinload(Disclosure.request))
            .order_by(Disclosure.released_at)
        )
    )
