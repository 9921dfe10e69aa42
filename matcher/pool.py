"""Encoding on every core: worker processes that each load the models once.

Used by enrolment and by the benchmarks, so both measure the same pipeline.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from matcher.decode import DecodeLimits
from matcher.engine import EngineName
from matcher.engines import load_engine
from matcher.pipeline import FaceChoice, Matcher
from matcher.quality import Quality, QualityPolicy
from matcher.refusals import FaceRefusal

# A worker's answer for one photo: the descriptor's float32 bytes, or the refusal code.
Encoding = tuple[bytes, None] | tuple[None, str]
# With the face's quality measures too (calibration applies quality policies afterwards).
Measurement = tuple[bytes, Quality] | tuple[None, str]


@dataclass(frozen=True)
class EncoderConfig:
    """What a worker needs to build its own matcher."""

    engine: EngineName = "dlib"
    detect_max_side: int = 640
    limits: DecodeLimits = DecodeLimits()
    policy: QualityPolicy | None = None  # None: the engine's own
    choice: FaceChoice = "only"


_worker: tuple[Matcher, FaceChoice] | None = None


def _start(config: EncoderConfig) -> None:
    global _worker
    engine = load_engine(config.engine, config.detect_max_side)
    matcher = Matcher(engine, config.limits, config.policy)
    _worker = (matcher, config.choice)


def _measure(path: str) -> Measurement:
    assert _worker is not None, "not in an encoder process"
    matcher, choice = _worker
    try:
        with open(path, "rb") as handle:
            template = matcher.encode(handle.read(), choice=choice)
    except FaceRefusal as refusal:
        return None, refusal.code
    return template.descriptor.tobytes(), template.quality


def _encode(path: str) -> Encoding:
    blob, outcome = _measure(path)
    return (blob, None) if blob is not None else (None, outcome)


class EncoderPool:
    """A process pool (spawned, not forked: no database connection or lock is inherited)."""

    def __init__(self, config: EncoderConfig, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(config,),
        )

    def submit(self, path: str) -> Future[Encoding]:
        return self._pool.submit(_encode, path)

    def measure(self, path: str) -> Future[Measurement]:
        return self._pool.submit(_measure, path)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(cancel_futures=True)
