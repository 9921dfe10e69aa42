"""The engine interface: detect, align, describe. The service, enrolment and the benchmarks
use engines only through it, and pick one by name (matcher.ENGINES)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from index.metrics import Metric, distances
from matcher.quality import Landmarks, QualityPolicy
from matcher.refusals import Box

EngineName = Literal["dlib", "sface"]


@dataclass(frozen=True)
class EngineSpec:
    """What the gallery needs to know of an engine, without loading its models."""

    name: EngineName
    model_id: str
    dimension: int
    metric: Metric
    # Quality measures depend on the engine's landmarks and crop, so their limits do too.
    quality: QualityPolicy
    # The match rule's ambiguity margin (MatchRule.margin): what it buys depends on how the
    # engine's distances crowd (benchmarks/identify.py).
    margin: float


@dataclass(frozen=True, eq=False)
class Detection:
    box: Box
    # What the engine needs again to align this face (YuNet's landmarks); None for dlib.
    points: np.ndarray | None = field(default=None, repr=False)


class Engine(Protocol):
    spec: EngineSpec

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...

    def align(self, rgb: np.ndarray, face: Detection) -> tuple[Landmarks, np.ndarray]:
        """The face's landmarks and the aligned RGB crop the descriptor network sees."""
        ...

    def describe(self, chip: np.ndarray) -> np.ndarray:
        """The float32 descriptor of an aligned RGB crop."""
        ...


def distance(a: np.ndarray, b: np.ndarray, metric: Metric) -> float:
    """The distance between two descriptors, as the gallery index measures it."""
    return float(distances(a[None, :], b[None, :], metric)[0, 0])
