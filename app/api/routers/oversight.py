"""Oversight, for auditors: the transparency and accountability reports, the operating point
and the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from app.api.deps import Caller, ServicesDep, SessionDep, require
from app.api.schemas import MAX_ROW_ID, problems
from app.audit import trail
from app.audit.models import AuditEntry
from app.audit.schemas import AuditEntryView, AuditVerification
from app.core.composition import anchor_sink
from app.oversight.accountability import accountability, report_period
from app.oversight.reports import check_period, operating_point_view, transparency
from app.oversight.schemas import AccountabilityReport, OperatingPointView, TransparencyReport
from auth import Permission

router = APIRouter(
    prefix="/v1",
    tags=["oversight"],
    responses=problems(401, 403, 422),
)
_COMPONENT = "oversight"
Auditor = Annotated[Caller, Depends(require(Permission.read_audit))]
# What an audit filter may hold: printable ASCII, as the identifiers the log records are.
PRINTABLE = r"^[\x20-\x7e]*$"


@router.get("/reports/transparency", response_model=TransparencyReport)
def transparency_report(
    period_from: Annotated[date, Query(alias="from", description="First day (UTC)")],
    period_to: Annotated[date, Query(alias="to", description="Day after the last (UTC)")],
    session: SessionDep,
    caller: Annotated[Caller, Depends(require(Permission.read_reports))],
) -> TransparencyReport:
    check_period(period_from, period_to)
    with session.begin():
        report = transparency(session, period_from, period_to)
        trail.record(session, _COMPONENT, "report.transparency", caller.actor, "success")
    return report


@router.get("/operating-point", response_model=OperatingPointView)
def read_operating_point(
    services: ServicesDep,
    session: SessionDep,
    caller: Annotated[Caller, Depends(require(Permission.read_operating_point))],
) -> OperatingPointView:
    """The operating point every search uses now; each search records its SHA-256."""
    with session.begin():
        view = operating_point_view(
            session, services.settings, services.operating_point, services.operating_point_sha256
        )
        trail.record(session, _COMPONENT, "operating_point.read", caller.actor, "success")
    return view


@router.get("/reports/accountability", response_model=AccountabilityReport)
def accountability_report(
    services: ServicesDep,
    session: SessionDep,
    caller: Annotated[Caller, Depends(require(Permission.read_reports))],
    period_from: Annotated[
        date | None, Query(alias="from", description="First day (UTC); default a year before 'to'")
    ] = None,
    period_to: Annotated[
        date | None, Query(alias="to", description="Day after the last (UTC); default tomorrow")
    ] = None,
) -> AccountabilityReport:
    """The accountability report of the service as it runs now (docs/operations.md), with the
    transparency report's figures for the period."""
    period_from, period_to = report_period(period_from, period_to, datetime.now(UTC).date())
    with session.begin():
        report = accountability(
            session,
            services.settings,
            services.operating_point,
            services.operating_point_sha256,
            period_from,
            period_to,
        )
        trail.record(
            session,
            _COMPONENT,
            "report.accountability",
            caller.actor,
            "success",
            period_from=period_from.isoformat(),
            period_to=period_to.isoformat(),
        )
    return report


@router.get("/audit", response_model=list[AuditEntryView])
def read_audit_log(
    session: SessionDep,
    caller: Auditor,
    after: Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="Entries after this number")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Annotated[
        str | None, Query(max_length=100, pattern=PRINTABLE, examples=["account:7"])
    ] = None,
    event_type: Annotated[
        str | None, Query(max_length=64, pattern=PRINTABLE, examples=["search"])
    ] = None,
    object_id: Annotated[
        str | None, Query(max_length=100, pattern=PRINTABLE, examples=["request:12"])
    ] = None,
    since: Annotated[datetime | None, Query(description="At or after this time")] = None,
    until: Annotated[datetime | None, Query(description="Before this time")] = None,
) -> list[AuditEntryView]:
    """Audit entries in order, after `after`, narrowed by actor, event, object and time."""
    query = select(AuditEntry).where(AuditEntry.seq > after)
    for column, value in (
        (AuditEntry.actor, actor),
        (AuditEntry.event_type, event_type),
        (AuditEntry.object_id, object_id),
    ):
        if value:
            query = query.where(column == value)
    # A time without a zone is UTC, as every time the service writes is.
    if since is not None:
        query = query.where(AuditEntry.at >= since.replace(tzinfo=since.tzinfo or UTC))
    if until is not None:
        query = query.where(AuditEntry.at < until.replace(tzinfo=until.tzinfo or UTC))
    with session.begin():
        entries = session.scalars(query.order_by(AuditEntry.seq).limit(limit)).all()
        views = [AuditEntryView.model_validate(e, from_attributes=True) for e in entries]
        trail.record(session, _COMPONENT, "audit.read", caller.actor, "success", after=after)
    return views


@router.get("/audit/verify", response_model=AuditVerification)
def verify_audit_log(
    services: ServicesDep, session: SessionDep, caller: Auditor
) -> AuditVerification:
    """Walk the hash chain from the start or the newest purge's signed checkpoint; name the
    first entry edited, deleted, inserted or moved, or rewritten or cut off after it was
    anchored (against the anchor file; the copies sent to syslog are checked with
    `facematch audit verify --anchors EXPORT`)."""
    anchors = anchor_sink(services.settings).read()
    with session.begin():
        result = trail.verify(session, services.audit_keys, anchors)
        trail.record(
            session,
            _COMPONENT,
            "audit.verify",
            caller.actor,
            "intact" if result.intact else "broken",
            first_bad=result.first_bad_seq,
            anchored=result.anchored_seq,
        )
    return AuditVerification.model_validate(result, from_attributes=True)
