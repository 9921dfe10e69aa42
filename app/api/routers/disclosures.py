"""The hotline's question, "was my information shared?": the releases of one licence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.deps import Caller, SessionDep, require
from app.api.schemas import problems
from app.audit import trail
from app.gallery.release import LicenseNumber
from app.requests.workflow import COMPONENT
from app.searches.schemas import Disclosures, DisclosureView
from app.searches.workflow import disclosures_of
from auth import Permission

router = APIRouter(
    prefix="/v1/disclosures",
    tags=["disclosures"],
    responses=problems(401, 403, 422),
)


@router.get("", response_model=Disclosures)
def lookup(
    license_number: Annotated[LicenseNumber, Query(description="The caller's licence number")],
    session: SessionDep,
    caller: Annotated[Caller, Depends(require(Permission.lookup_disclosures))],
) -> Disclosures:
    """When, to which agency and under which request this licence's five fields were
    released. The lookup is audited; the licence number is not written to the audit log."""
    with session.begin():
        found = disclosures_of(session, license_number)
        trail.record(
            session, COMPONENT, "disclosure.lookup", caller.actor, "success", found=len(found)
        )
        return Disclosures(
            disclosures=[
                DisclosureView(
                    released_at=d.released_at,
                    agency_name=d.agency_name,
                    request_id=d.request_id,
                    case_number=d.request.case_number,
                )
                for d in found
            ]
        )
