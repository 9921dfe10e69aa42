"""Agencies' requests: submission (screened at once), the review chain, and their status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app import audit
from app.deps import Caller, ServicesDep, SessionDep, require
from app.errors import ApiError
from app.models import Account, AgencyRequest
from app.rules import Status, awaiting
from app.schemas import (
    Authorisation,
    NewRequest,
    NewReview,
    RequestView,
    ReviewView,
    RowId,
    ScreeningView,
    problems,
)
from app.workflow import COMPONENT, get_request, named_reviewer, request_ref, review, submit
from auth import Permission, Role

router = APIRouter(
    prefix="/v1/requests",
    tags=["requests"],
    responses=problems(401, 403, 404, 409, 422),
)


def request_view(request: AgencyRequest) -> RequestView:
    status = Status(request.status)
    return RequestView(
        id=request.id,
        status=status,
        submitted_at=request.submitted_at,
        agency_name=request.agency_name,
        agency_kind=request.agency_kind,
        case_number=request.case_number,
        crime_category=request.crime_category,
        statutes=request.statutes,
        legal_process=request.legal_process,
        screening=ScreeningView(
            passed=request.screening_outcome == "passed",
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
        request = submit(session, body, services.settings, caller.id)
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
        audit.record(
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
    caller: Annotated[Caller, Depends(require(Permission.review_request))],
) -> RequestView:
    """Record the decision of the level the request awaits. The request-review system names
    the reviewer who decided in it; a reviewer calling directly decides as themself."""
    with audit.refusals_recorded(
        session, COMPONENT, "request.review", caller.actor, request_ref(request_id)
    ):
        with session.begin():
            if caller.role is Role.review_system:
                if body.reviewer is None:
                    raise ApiError(
                        422,
                        "reviewer_required",
                        "The request-review system must name the reviewer who decided.",
                    )
                reviewer, via = named_reviewer(session, body.reviewer), caller.id
            elif body.reviewer not in (None, caller.username):
                raise ApiError(403, "not_on_behalf", "A reviewer records only their own decisions.")
            else:
                reviewer, via = session.get_one(Account, caller.id), None
            review(
                session, request_id, reviewer, via, body.decision, body.reason, services.settings
            )
    return request_view(get_request(session, request_id))
