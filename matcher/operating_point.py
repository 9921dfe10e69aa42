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
from matcher.decision import GalleryTemplates
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


class Rate(BaseModel):
    """A measured rate with its 95 % interval from resampling people (not comparisons: one
    person's photos stand or fall together)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float
    low: float
    high: float


class GroupCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mated_searches: int
    fnir: Rate | None  # None: the group has no mated search
    non_mated_comparisons: int
    fpir: Rate


class Check(BaseModel):
    """The point tried on a labelled set (`facematch calibrate --check`): half its people
    enrolled as the index holds them, searched with their other photos and with every photo
    of the other half, by the service's own index and decision rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    photos: int
    people_enrolled: int
    # The rest of the decision rule the searches ran under.
    max_candidates: int
    margin: float
    mated_searches: int
    non_mated_searches: int
    # Probes the pipeline refused, by refusal code: each one a miss when mated.
    refused: dict[str, int]
    # Mated searches whose nearest person is the right one, whatever the threshold.
    rank_1: float
    # Mated searches whose person is not among the candidates at the threshold.
    fnir: Rate
    # The share of searches of someone not enrolled that would return a candidate with
    # gallery_size people enrolled, from the false-match rate of the set's comparisons.
    fpir: Rate
    non_mated_comparisons: int
    groups: dict[str, GroupCheck]
    date: datetime


class OperatingPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str
    metric: Metric
    # The templates the index searches, which the comparisons below were made against.
    gallery_templates: GalleryTemplates = "photo"
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
    # What the point gave on labelled sets it was not calibrated on, by set.
    checks: dict[str, Check] = {}

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
