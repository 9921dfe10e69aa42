"""What a search and its human review show, and the hotline's disclosure lookup."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from app.core.schemas import Input
from app.gallery.release import Release
from app.searches.rules import Conclusion, SearchOutcome


class Candidate(BaseModel):
    """A possible match for the examiners to compare: a rank, a reference valid for this
    search, and how many enrolled photos they may see. No identity field, no score."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(ge=1)
    ref: str
    photos: int


class SearchResult(BaseModel):
    """What the search returns: its candidates as faces to compare, nearest first."""

    model_config = ConfigDict(extra="forbid")

    search_id: int
    request_id: int
    examiners_required: int
    candidates: list[Candidate]


class SearchView(SearchResult):
    """A search as one of its examiners sees it: never another examiner's conclusions."""

    examiner: Literal["operator", "verifier"]
    examined: bool
    decision: SearchOutcome | None


class VerificationQueue(BaseModel):
    """Undecided searches that need a second examiner and that the caller may verify."""

    searches: list[int]


Basis = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]


class CandidateConclusion(Input):
    """One candidate's conclusion, from comparing the faces, and its basis: the features
    compared (FISWG)."""

    candidate: str = Field(max_length=32, description="the candidate's ref")
    conclusion: Conclusion
    basis: Basis


class Examination(Input):
    """An examiner's conclusions: one for every candidate, at most one identification."""

    conclusions: list[CandidateConclusion] = Field(max_length=50)


class ExaminationView(BaseModel):
    """What the examination did: the decision once every examiner needed has concluded, and
    the release, shown here once, when it was the searching operator's examination."""

    search_id: int
    decision: SearchOutcome | None
    release: Release | None


class OutcomeView(BaseModel):
    """A decided search's outcome, for the system that passed it on."""

    search_id: int
    request_id: int
    decision: SearchOutcome
    release: Release | None


class DisclosureView(BaseModel):
    released_at: datetime
    agency_name: str
    request_id: int
    case_number: str


class Disclosures(BaseModel):
    disclosures: list[DisclosureView]
