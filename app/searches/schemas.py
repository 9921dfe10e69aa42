"""What a search and its decision show, and the hotline's disclosure lookup."""

from __future__ import annotations

from datetime import datetime

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from app.core.schemas import Input
from app.gallery.release import Release
from app.searches.rules import SearchOutcome


class Candidate(Release):
    """A possible match for the operator to review: a rank and the five fields, no score."""

    rank: int = Field(ge=1)


class SearchResult(BaseModel):
    """What the operator sees: candidates for human review, nearest first, no scores."""

    model_config = ConfigDict(extra="forbid")

    search_id: int
    request_id: int
    candidates: list[Candidate]


class SearchDecision(Input):
    """The operator's conclusion: the rank of the one candidate confirmed, or null for none."""

    confirmed_rank: int | None = Field(ge=1)


class DecisionView(BaseModel):
    search_id: int
    decision: SearchOutcome
    release: Release | None


class DisclosureView(BaseModel):
    released_at: datetime
    agency_name: str
    request_id: int
    case_number: str


class Disclosures(BaseModel):
    disclosures: list[DisclosureView]
