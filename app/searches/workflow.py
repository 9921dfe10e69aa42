"""The gated search, the operator's decision and the disclosure it may make, applied to the
database and recorded in the audit log in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from app.accounts.service import actor_of, trained
from app.audit import trail
from app.core.database import rows_changed
from app.core.refusals import Code, Refusal
from app.gallery.models import LicenseRecord
from app.gallery.service import Hits
from app.requests.models import AgencyRequest
from app.requests.rules import Status
from app.requests.workflow import COMPONENT, get_request, request_ref
from app.searches.models import Disclosure, Search, SearchCandidate
from app.searches.rules import SearchOutcome, check_search
from matcher import MatchRule


def search_ref(search_id: int) -> str:
    return f"search:{search_id}"


def authorise_search(session: Session, request_id: int, operator: int, course: str) -> None:
    """Refuse, with the specific reason, a search the operator may not make now."""
    if not trained(session, operator, course):
        raise Refusal(Code.training_expired, "Your face-search certification is not current.")
    request = get_request(session, request_id)
    check_search(
        request.status,
        request.authorised_until,
        request.searches_used,
        request.searches_allowed,
        datetime.now(UTC),
        operator,
        {request.submitted_by} | {r.reviewer_id for r in request.reviews},
        {a.operator_id for a in request.operators},
    )


@dataclass(frozen=True)
class Searcher:
    """Who searches: the operator, the request-review system passing the search on (if it
    is), and the course the operator's training must be current in."""

    operator: int
    via_system: int | None
    course: str


@dataclass(frozen=True)
class ChosenBy:
    """What chose a search's candidates: the engine's model, the decision rule, and the
    SHA-256 of the operating point its threshold came from."""

    model_id: str
    rule: MatchRule
    operating_point_sha256: str


def spend_search(session: Session, request_id: int, now: datetime) -> bool:
    """Rule 7's enforcement: spend one of the request's searches where it is approved, still
    authorised and has one left, in one statement, so two searches at once cannot both spend
    the last one. `searches.rules.check_search` explains a refusal; they agree
    (tests/test_rules.py)."""
    spent = rows_changed(
        session,
        update(AgencyRequest)
        .where(
            AgencyRequest.id == request_id,
            AgencyRequest.status == Status.approved,
            AgencyRequest.searches_used < AgencyRequest.searches_allowed,
            AgencyRequest.authorised_until > now,
        )
        .values(searches_used=AgencyRequest.searches_used + 1),
    )
    return spent == 1


def record_search(
    session: Session,
    request_id: int,
    searcher: Searcher,
    chosen_by: ChosenBy,
    probe_sha256: str,
    hits: Hits,
) -> Search:
    """Spend one of the request's searches and record the search, what chose its candidates,
    and the candidates."""
    if not spend_search(session, request_id, datetime.now(UTC)):
        authorise_search(session, request_id, searcher.operator, searcher.course)  # the reason
        raise Refusal(Code.conflict, "The request changed during the search; try again.")
    search = Search(
        request_id=request_id,
        operator_id=searcher.operator,
        via_system_id=searcher.via_system,
        probe_sha256=probe_sha256,
        model_id=chosen_by.model_id,
        index_revision=hits.index_revision,
        threshold=chosen_by.rule.threshold,
        margin=chosen_by.rule.margin,
        operating_point_sha256=chosen_by.operating_point_sha256,
        candidates=[
            SearchCandidate(rank=rank, record_id=record.id, distance=distance)
            for rank, (record, distance) in enumerate(hits.matches, start=1)
        ],
    )
    session.add(search)
    session.flush()
    trail.record(
        session,
        COMPONENT,
        "search",
        actor_of(searcher.operator),
        "success",
        search_ref(search.id),
        request=request_ref(request_id),
        via=actor_of(searcher.via_system) if searcher.via_system else None,
        model_id=chosen_by.model_id,
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
        raise Refusal(Code.search_not_found, "There is no such search.")
    if search.operator_id != operator:
        raise Refusal(
            Code.not_search_operator, "Only the operator who ran the search may decide on it."
        )
    if search.decision is not None:
        raise _already_decided()
    if search.candidates_purged_at is not None:
        raise Refusal(
            Code.candidates_purged,
            "This search's candidate list was deleted under the retention policy; "
            "nobody can be confirmed from it.",
        )
    record = None
    if confirmed_rank is not None:
        candidate = next((c for c in search.candidates if c.rank == confirmed_rank), None)
        if candidate is None:
            raise Refusal(
                Code.no_such_candidate, f"The search has no candidate at rank {confirmed_rank}."
            )
        if candidate.record is None:
            raise Refusal(
                Code.record_purged, "That candidate's licence record has since been purged."
            )
        record = candidate.record
    # One conditional write decides: of two decisions sent at once, exactly one wins.
    outcome = SearchOutcome.confirmed if record is not None else SearchOutcome.none
    decided = rows_changed(
        session,
        update(Search)
        .where(Search.id == search.id, Search.decision.is_(None))
        .values(decision=outcome, confirmed_rank=confirmed_rank, decided_at=datetime.now(UTC))
        .execution_options(synchronize_session=False),
    )
    if decided != 1:
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
    trail.record(
        session,
        COMPONENT,
        "search.decision",
        actor_of(operator),
        outcome,
        search_ref(search.id),
        request=request_ref(search.request_id),
        disclosure=f"disclosure:{disclosure.id}" if disclosure else None,
        record=f"license_record:{record.id}" if record else None,
    )
    return search, record


def _already_decided() -> Refusal:
    return Refusal(Code.already_decided, "This search has already been decided.")


def disclosures_of(session: Session, license_number: str) -> list[Disclosure]:
    return list(
        session.scalars(
            select(Disclosure)
            .where(Disclosure.license_number == license_number)
            .options(selectinload(Disclosure.request))
            .order_by(Disclosure.released_at)
        )
    )
