"""Agencies' requests: submission (screened at once), the review chain, and their status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Response, UploadFile

from app.accounts.models import Account
from app.api.deps import Caller, CallingSystem, ServicesDep, SessionDep, require, single_form_fields
from app.api.schemas import RowId, problems
from app.audit import trail
from app.core.refusals import Code, Refusal
from app.requests import citations
from app.requests.models import AgencyRequest
from app.requests.rules import awaiting
from app.requests.schemas import (
    Agency,
    Authorisation,
    CourtOrderView,
    NewRequest,
    NewReview,
    RequestView,
    ReviewView,
    ScreeningView,
)
from app.requests.screening import ScreeningOutcome
from app.requests.workflow import (
    COMPONENT,
    attach_court_order,
    court_order_document,
    get_request,
    request_ref,
    review,
    submit,
)
from auth import Permission

router = APIRouter(
    prefix="/v1/requests",
    tags=["requests"],
    responses=problems(401, 403, 404, 409, 422),
)


def request_view(request: AgencyRequest) -> RequestView:
    status = request.status
    information_for = None
    if request.information_for_name is not None and request.information_for_code is not None:
        information_for = Agency(
            name=request.information_for_name, code=request.information_for_code
        )
    court_order = None
    if request.court is not None and request.judge is not None:
        assert request.order_signed_on is not None and request.order_sha256 is not None
        court_order = CourtOrderView(
            court=request.court,
            judge=request.judge,
            signed_on=request.order_signed_on,
            document_sha256=request.order_sha256,
            document_on_file=request.court_order_document is not None,
        )
    return RequestView(
        id=request.id,
        status=status,
        submitted_at=request.submitted_at,
        agency_name=request.agency_name,
        agency_code=request.agency_code,
        agency_kind=request.agency_kind,
        information_for=information_for,
        case_number=request.case_number,
        requesting_officer=request.requesting_officer,
        crime_category=request.crime_category,
        statutes=request.statutes,
        citations=[str(c) for statute in request.statutes for c in citations.read(statute)],
        legal_process=request.legal_process,
        court_order=court_order,
        narrative=request.narrative,
        screening=ScreeningView(
            passed=request.screening_outcome is ScreeningOutcome.passed,
            rule=request.screening_rule,
            reason=request.screening_reason,
            immigration_authority=request.immigration_authority,
            immigration_related=request.immigration_related,
        ),
        awaiting=awaiting(status, request.immigration_related, len(request.reviews)),
        reviews=[
            ReviewView(
                level=r.level,
                reviewer=r.reviewer.username,
                via_system=r.via_system.username if r.via_system else None,
                decision=r.decision,
                reason=r.reason,
                decided_at=r.decided_at,
            )
            for r in request.reviews
        ],
        assigned_operators=[a.operator.username for a in request.operators],
        authorisation=Authorisation(
            searches_allowed=request.searches_allowed,
            searches_used=request.searches_used,
            expires_at=request.authorised_until,
        )
        if request.authorised_until is not None
        else None,
    )


@router.post("", response_model=RequestView, status_code=201, name="request.submit")
def submit_request(
    body: NewRequest,
    services: ServicesDep,
    session: SessionDep,
    caller: Annotated[Caller, Depends(require(Permission.submit_request))],
) -> RequestView:
    """Submit an agency's request; screening (rules 2-4) runs now and its result is final
    if it rejects."""
    with session.begin():
        request = submit(session, body, services.requests, caller.id)
    return request_view(get_request(session, request.id))


@router.get("/{request_id}", response_model=RequestView)
def read_request(
    request_id: RowId,
    session: SessionDep,
    caller: Annotated[Caller, Depends(require(Permission.read_request))],
) -> RequestView:
    """A request's status, screening result, review trail and authorisation."""
    with session.begin():
        view = request_view(get_request(session, request_id))
        trail.record(
            session, COMPONENT, "request.read", caller.actor, "success", request_ref(request_id)
        )
    return view


@router.post(
    "/{request_id}/reviews", response_model=RequestView, status_code=201, name="request.review"
)
def review_request(
    request_id: RowId,
    body: NewReview,
    services: ServicesDep,
    session: SessionDep,
    reviewer: Annotated[Caller, Depends(require(Permission.review_request))],
    system: CallingSystem,
) -> RequestView:
    """Record the reviewer's decision at the level the request awaits, under the reviewer's
    own token (with the second factor). The request-review system passing on a decision made
    in it sends its own token beside the reviewer's, in X-Calling-System; it cannot decide
    alone. The unit administrator's approval names the operators assigned to search."""
    with trail.refusals_recorded(
        session, COMPONENT, "request.review", reviewer.actor, request_ref(request_id)
    ):
        with session.begin():
            review(
                session,
                request_id,
                session.get_one(Account, reviewer.id),
                system.id if system else None,
                body.decision,
                body.reason,
                body.operators,
                services.approvals,
            )
    return request_view(get_request(session, request_id))


@router.put(
    "/{request_id}/court-order",
    status_code=204,
    name="court_order.upload",
    responses=problems(413, 415),
)
def upload_court_order(
    request_id: RowId,
    services: ServicesDep,
    session: SessionDep,
    caller: Annotated[Caller, Depends(require(Permission.submit_request))],
    _one_each: Annotated[None, Depends(single_form_fields)],
    document: Annotated[UploadFile, File(description="The signed order: PDF, JPEG or PNG")],
) -> None:
    """The court order itself, before the first review: its SHA-256 must be the one the
    request declared. Kept sealed; reviewers read it."""
    limit = services.settings.max_court_order_bytes
    data = document.file.read(limit + 1)
    if len(data) > limit:
        raise Refusal(
            Code.document_too_large, f"A court order's document is at most {limit} bytes."
        )
    with trail.refusals_recorded(
        session, COMPONENT, "court_order.upload", caller.actor, request_ref(request_id)
    ):
        with session.begin():
            attach_court_order(session, request_id, caller.id, data, services.keys)


@router.get(
    "/{request_id}/court-order",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}}},
)
def read_court_order(
    request_id: RowId,
    services: ServicesDep,
    session: SessionDep,
    caller: Annotated[Caller, Depends(require(Permission.read_court_order))],
) -> Response:
    """The court order's document, for the reviewers who decide on it; never cached."""
    with session.begin():
        data, media_type = court_order_document(session, request_id, caller.id, services.keys)
    suffix = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}[media_type]
    return Response(
        data,
        media_type=media_type,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="court-order-{request_id}.{suffix}"',
        },
    )
