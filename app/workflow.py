"""The life of a request: submission and screening, the review chain, the gated search, the
operator's decision and the disclosure it may make. The rules come from app.rules; this
module applies them to the database and records each event in the audit log, in the same
transaction as the change."""

from __future__ import annotations

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
    Disclosure,
    LicenseRecord,
    Review,
    Search,
    SearchCandidate,
)
from app.rules import (
    LEVEL_ROLE,
    Decision,
    Facts,
    LegalProcess,
    Status,
    check_review,
    check_search,
    screen,
    status_after,
)
from app.schemas import NewRequest
from auth import Role
from matcher import MatchRule

COMPONENT = "requests"


def request_ref(request_id: int) -> str:
    return f"request:{request_id}"


def search_ref(search_id: int) -> str:
    return f"search:{search_id}"


def submit(session: Session, body: NewRequest, settings: Settings, submitter: int) -> AgencyRequest:
    """Store a request and screen it (rules 2-4): it goes to review, or is rejected for good."""
    screening = screen(
        Facts(
            agency_code=body.agency_code,
            declared_immigration_authority=body.immigration_authority,
            crime_category=body.crime.category,
            statutes=body.crime.statutes,
            judge_signed_court_order=body.legal_process is LegalProcess.court_order,
        ),
        settings.request_policy,
    )
    order = body.court_order
    request = AgencyRequest(
        submitted_by=submitter,
        agency_name=body.agency_name,
        agency_code=body.agency_code,
        agency_kind=body.agency_kind.value,
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


def review(
    session: Session,
    request_id: int,
    reviewer: Account,
    via_system: int | None,
    decision: Decision,
    reason: str,
    settings: Settings,
) -> AgencyRequest:
    """Record one level's decision (rules 5-7 and separation of duties)."""
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
    )
    session.flush()
    return request


def named_reviewer(session: Session, username: str) -> Account:
    """The reviewer whose decision the request-review system records."""
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None or not account.active or Role(account.role) not in LEVEL_ROLE.values():
        raise ApiError(
            422, "unknown_reviewer", "The reviewer named is not an active reviewer's account."
        )
    return account


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
        raise ApiError(409, "already_decided", "This search has already been decided.")
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
    search.decision = "confirmed" if record is not None else "none"
    search.confirmed_rank = confirmed_rank
    search.decided_at = datetime.now(UTC)
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


def disclosures_of(session: Session, license_number: str) -> list[Disclosure]:
    return list(
        session.scalars(
            select(Disclosure)
            .where(Disclosure.license_number == license_number)
            .options(selectinload(Disclosure.request))
            .order_by(Disclosure.released_at)
        )
    )
