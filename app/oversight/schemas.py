"""The figures auditors read: the transparency report and the operating point."""

from __future__ import annotations

from datetime import date

from pydantic import (
    BaseModel,
)

from matcher.operating_point import OperatingPoint


class ScreeningFigures(BaseModel):
    passed: int
    rejected: int
    rejected_by_rule: dict[str, int]


class ReviewFigures(BaseModel):
    approved: int
    denied: int
    in_review: int


class ConclusionFigures(BaseModel):
    """The examiners' conclusions on candidates, and the searches their examiners disagreed
    on (nothing released)."""

    identifications: int
    exclusions: int
    inconclusives: int
    disagreements: int


class TransparencyReport(BaseModel):
    """The figures the agency publishes: requests submitted in [from, to) and what became of
    them, and the searches, confirmations and releases made in the same period."""

    period_from: date
    period_to: date
    requests: int
    by_agency_kind: dict[str, int]
    immigration_related: int
    immigration_authority: int
    court_order_present: int
    screening: ScreeningFigures
    reviews: ReviewFigures
    forwarded_to_governor_office: int
    approval_rate: float | None
    searches: int
    confirmations: int
    releases: int
    conclusions: ConclusionFigures


class OperatingPointView(BaseModel):
    """The threshold searches use, the measurement behind it, and the rest of the decision
    rule: what an auditor checks a search's recorded threshold against."""

    sha256: str
    operating_point: OperatingPoint
    margin: float
    max_candidates: int
    # A gallery larger than the one the threshold was calibrated for returns more false
    # candidates than the target: time to calibrate again (docs/accuracy.md, "Thresholds").
    people_enrolled: int
    within_calibrated_gallery: bool
