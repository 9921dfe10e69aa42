"""The figures auditors read: the transparency report, the operating point, and the
accountability report that gathers them with the rest of what the service is and does."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import (
    BaseModel,
)

from auth import Level, Role
from index import Metric
from matcher import EngineName
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


class Software(BaseModel):
    """A piece of software as installed: its distribution's name and version."""

    name: str
    version: str


class WeightFile(BaseModel):
    """A weight file, by name and the SHA-256 it was just checked to have: the one measured."""

    name: str
    sha256: str


class EngineFacts(BaseModel):
    """The engine that makes every template and probe descriptor, and what it is made of."""

    name: EngineName
    model_id: str
    dimension: int
    metric: Metric
    runtime: Software
    weights_package: Software
    weights: list[WeightFile]
    # The probe quality limits in force: a face outside them is refused, not searched.
    quality: dict[str, float]


class DataFacts(BaseModel):
    """What goes in and out, and how long what is kept is kept."""

    request_fields: list[str]
    max_image_bytes: int
    max_image_pixels: int
    released_fields: list[str]
    candidate_retention_days: int
    probe_hash_retention_days: int
    audit_retention_days: int


class RequestRules(BaseModel):
    """The screening rules' lists and what an approval authorises, as configured."""

    qualifying_crimes: list[str]
    immigration_statutes: list[str]
    immigration_related_statutes: list[str]
    immigration_agencies: list[str]
    immigration_agency_names: list[str]
    court_order_max_age_days: int
    authorised_searches: int
    authorisation_days: int


class ReviewStep(BaseModel):
    level: Level
    role: Role


class HumanReview(BaseModel):
    """The reviews a request needs before a search, and the trained review of its
    candidates before anything is released."""

    internal_reviews: list[ReviewStep]
    immigration_reviews: list[ReviewStep]
    # Who compares a search's candidates with the probe, and the course they must hold.
    examiner_roles: list[Role]
    operator_course: str
    # How many trained examiners must each identify the same candidate before a release.
    examiners: int
    conclusions: list[str]


class AccountabilityReport(BaseModel):
    """What an accountability report states (RCW 43.386.020), every figure read from the
    running service, its settings or the operating point file it names."""

    generated_at: datetime
    service: Software
    engine: EngineFacts
    # Where the operating point was read from; `shipped` when it is the one the release
    # ships (committed in the repository) for the engine.
    operating_point_file: str
    operating_point_shipped: bool
    operating_point: OperatingPointView
    data: DataFacts
    request_rules: RequestRules
    review: HumanReview
    transparency: TransparencyReport
