"""The transparency report: the figures the agency publishes about requests and releases;
and the operating point as auditors read it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.core.refusals import Code, Refusal
from app.core.settings import Settings
from app.gallery.store import people_enrolled
from app.oversight.schemas import (
    ConclusionFigures,
    OperatingPointView,
    ReviewFigures,
    ScreeningFigures,
    TransparencyReport,
)
from app.requests.models import AgencyRequest
from app.requests.rules import Decision, LegalProcess, Status
from app.requests.screening import ScreeningOutcome
from app.searches.models import CandidateConclusion, Disclosure, Examination, Search
from app.searches.rules import Conclusion, SearchOutcome
from auth import Level
from matcher.operating_point import OperatingPoint


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def check_period(period_from: date, period_to: date) -> None:
    if period_to <= period_from:
        raise Refusal(Code.invalid_period, "'to' must be a later day than 'from'.")


def transparency(session: Session, period_from: date, period_to: date) -> TransparencyReport:
    """Requests submitted from `period_from` up to (not including) `period_to`, UTC days, and
    the searches and releases made in the same days."""
    start, end = _start_of(period_from), _start_of(period_to)
    requests = session.scalars(
        select(AgencyRequest)
        .where(AgencyRequest.submitted_at >= start, AgencyRequest.submitted_at < end)
        .options(selectinload(AgencyRequest.reviews))
    ).all()
    status = Counter(r.status for r in requests)
    # The Director's approval sends a request on to the Governor's Office.
    forwarded = sum(
        any(v.level == Level.director and v.decision == Decision.approve for v in r.reviews)
        for r in requests
    )
    settled = status[Status.approved] + status[Status.denied] + status[Status.rejected]

    concluded: dict[Conclusion, int] = {
        conclusion: times
        for conclusion, times in session.execute(
            select(CandidateConclusion.conclusion, func.count())
            .join(Examination)
            .where(Examination.concluded_at >= start, Examination.concluded_at < end)
            .group_by(CandidateConclusion.conclusion)
        ).all()
    }

    def count(model: type[Search] | type[Disclosure], column: Any, *where: Any) -> int:
        return (
            session.scalar(
                select(func.count()).select_from(model).where(column >= start, column < end, *where)
            )
            or 0
        )

    return TransparencyReport(
        period_from=period_from,
        period_to=period_to,
        requests=len(requests),
        by_agency_kind=dict(Counter(r.agency_kind for r in requests)),
        immigration_related=sum(r.immigration_related for r in requests),
        immigration_authority=sum(r.immigration_authority for r in requests),
        court_order_present=sum(r.legal_process == LegalProcess.court_order for r in requests),
        screening=ScreeningFigures(
            passed=sum(r.screening_outcome is ScreeningOutcome.passed for r in requests),
            rejected=status[Status.rejected],
            rejected_by_rule=dict(
                Counter(r.screening_rule for r in requests if r.status == Status.rejected)
            ),
        ),
        reviews=ReviewFigures(
            approved=status[Status.approved],
            denied=status[Status.denied],
            in_review=status[Status.in_review],
        ),
        forwarded_to_governor_office=forwarded,
        approval_rate=round(status[Status.approved] / settled, 4) if settled else None,
        searches=count(Search, Search.searched_at),
        confirmations=count(Search, Search.decided_at, Search.decision == SearchOutcome.confirmed),
        releases=count(Disclosure, Disclosure.released_at),
        conclusions=ConclusionFigures(
            identifications=concluded.get(Conclusion.identification, 0),
            exclusions=concluded.get(Conclusion.exclusion, 0),
            inconclusives=concluded.get(Conclusion.inconclusive, 0),
            disagreements=count(
                Search, Search.decided_at, Search.decision == SearchOutcome.disagreement
            ),
        ),
    )


def operating_point_view(
    session: Session, settings: Settings, point: OperatingPoint, point_sha256: str
) -> OperatingPointView:
    """The operating point with the rest of the decision rule the settings give, and the
    people enrolled now against the gallery it was calibrated for."""
    enrolled = people_enrolled(session, settings.engine_spec.model_id)
    return OperatingPointView(
        sha256=point_sha256,
        operating_point=point,
        margin=settings.match_margin,
        max_candidates=settings.max_candidates,
        people_enrolled=enrolled,
        within_calibrated_gallery=enrolled <= point.gallery_size,
    )
