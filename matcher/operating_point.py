"""The operating point: the threshold every search uses, with the measurement behind it.

`facematch calibrate` writes it from labelled photos; the repository ships one per engine
(matcher/operating_points/), and the service loads it, checks it is for its engine, uses its
threshold for every search and records which one it used.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from index import Metric
from matcher.engine import EngineName, EngineSpec

SHIPPED = Path(__file__).parent / "operating_points"


class OperatingPointError(ValueError):
    """An operating point file that cannot be used."""


class GroupMeasure(BaseModel):
    """One group's non-mated comparisons, and the threshold its own data call for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    comparisons: int
    supported_gallery_size: int
    threshold: float
    modelled: bool


class Estimate(BaseModel):
    """A modelled threshold for a larger gallery (the tail model, not observed comparisons),
    and the share of the data's mated comparisons it would miss."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float
    fnir: float


class OperatingPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str
    metric: Metric
    # A gallery template is a candidate when its distance to the probe is below this.
    threshold: float = Field(gt=0)
    target_fpir: float = Field(gt=0, lt=1)
    gallery_size: int = Field(ge=1)
    # The per-comparison false-match rate that holds target_fpir over gallery_size people.
    fmr: float
    # The largest gallery for which every group's data hold 3 / fmr non-mated comparisons.
    supported_gallery_size: int
    # True when gallery_size exceeds supported_gallery_size: the threshold then comes from
    # the stated tail model, not from observed comparisons.
    modelled: bool
    model: str | None = None
    by_group: bool
    binding_group: str
    groups: dict[str, GroupMeasure]
    data_sets: list[str]
    photos: int
    photos_with_template: int
    non_mated_comparisons: int
    mated_comparisons: int
    # The share of mated comparisons (a person's first photo against each later one) at or
    # above the threshold: the searches for an enrolled person this threshold costs.
    fnir: float
    quality_policy: dict[str, float]
    # For larger galleries, keyed by gallery size: modelled estimates, labelled as such.
    modelled_for_larger_galleries: dict[int, Estimate]
    date: datetime

    def fits(self, spec: EngineSpec) -> bool:
        return (self.model_id, self.metric) == (spec.model_id, spec.metric)


def shipped(engine: EngineName) -> Path:
    return SHIPPED / f"{engine}.json"


def load_operating_point(path: Path) -> tuple[OperatingPoint, str]:
    """The operating point in a file, and the file's SHA-256, which searches record."""
    try:
        data = path.read_bytes()
        point = OperatingPoint.model_validate_json(data)
    except OSError as problem:
        raise OperatingPointError(f"{path} cannot be read: {problem.strerror}") from None
    except ValidationError as problem:
        raise OperatingPointError(
            f"{path} is not an operating point: {problem.error_count()} problem(s), first: "
            f"{problem.errors()[0]['loc']} {problem.errors()[0]['msg']}"
        ) from None
    return point, hashlib.sha256(data).hexdigest()
