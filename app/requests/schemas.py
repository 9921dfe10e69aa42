"""A request as an agency submits it, and as a reviewer reads it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    model_validator,
)

from app.core.schemas import Input, Sha256, Text, Username
from app.requests.rules import AgencyKind, Decision, LegalProcess, Status
from auth import Level


class CourtOrder(Input):
    court: Text
    judge: Text
    signed_on: date
    document_sha256: Sha256


class Crime(Input):
    category: Annotated[str, StringConstraints(to_lower=True, min_length=1, max_length=64)]
    statutes: list[Text] = Field(default_factory=list, max_length=20)


AgencyCode = Annotated[str, StringConstraints(to_upper=True, min_length=1, max_length=32)]


class Agency(Input):
    name: Text
    code: AgencyCode


class NewRequest(Input):
    """An agency's request (rule 1). Screening reads it as submitted; it is kept as is."""

    agency_name: Text
    agency_code: AgencyCode
    agency_kind: AgencyKind
    immigration_authority: bool = False
    # The agency the information is for, when the requesting agency asks on another's behalf
    # (a task force for ICE, say): the request is screened as that agency's.
    information_for: Agency | None = None
    case_number: Text
    requesting_officer: Text
    crime: Crime
    legal_process: LegalProcess
    court_order: CourtOrder | None = None
    narrative: str = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _court_order_matches(self) -> NewRequest:
        if (self.legal_process is LegalProcess.court_order) != (self.court_order is not None):
            raise ValueError(
                "court_order is required with, and only with, legal_process court_order"
            )
        return self


class ScreeningView(BaseModel):
    passed: bool
    rule: str
    reason: str
    immigration_authority: bool
    immigration_related: bool


class ReviewView(BaseModel):
    level: Level
    reviewer: str
    via_system: str | None
    decision: Decision
    reason: str
    decided_at: datetime


class Authorisation(BaseModel):
    searches_allowed: int
    searches_used: int
    expires_at: datetime


class CourtOrderView(BaseModel):
    court: str
    judge: str
    signed_on: date
    document_sha256: str
    # Whether the document itself is on file (GET /v1/requests/{id}/court-order).
    document_on_file: bool


class RequestView(BaseModel):
    """Every fact of a request a reviewer decides on, the screening result and the rule
    that decided it, the review trail, and what an approval authorised."""

    id: int
    status: Status
    submitted_at: datetime
    agency_name: str
    agency_code: str
    agency_kind: AgencyKind
    information_for: Agency | None
    case_number: str
    requesting_officer: str
    crime_category: str
    # As submitted, and as screening read them.
    statutes: list[str]
    citations: list[str]
    legal_process: LegalProcess
    court_order: CourtOrderView | None
    narrative: str
    screening: ScreeningView
    awaiting: Level | None
    reviews: list[ReviewView]
    assigned_operators: list[str]
    authorisation: Authorisation | None


class NewReview(Input):
    decision: Decision
    reason: str = Field(min_length=1, max_length=2000)
    # The unit administrator's approval names the operators who may search (usernames).
    operators: list[Username] = Field(default_factory=list, max_length=10)
