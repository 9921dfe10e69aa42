"""Encoding on every core: worker processes that each load the models once.

Used by enrolment, by the service for probes and by the benchmarks, so all three run the same
pipeline.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import cv2

from matcher.decode import DecodeLimits
from matcher.engine import EngineName
from matcher.engines import load_engine
from matcher.pipeline import FaceChoice, FaceTemplate, Matcher
from matcher.quality import Quality, QualityPolicy
from matcher.refusals import Box, FaceRefusal

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


def _one_thread() -> None:
    """A worker is one core's worth of work: the workers are the parallelism, and OpenCV's
    own threads (one per core by default) would only contend with the other workers'."""
    cv2.setNumThreads(1)


def _start(config: EncoderConfig) -> None:
    global _worker
    _one_thread()
    engine = load_engine(config.engine, config.detect_max_side)
    matcher = Matcher(engine, config.limits, config.policy)
    _worker = (matcher, config.choice)


def _measure(path: str) -> Measurement:
    assert _worker is not None, "not in an encoder process"
    return _measured(*_worker, path)


def _measured(matcher: Matcher, choice: FaceChoice, path: str) -> Measurement:
    try:
        with open(path, "rb") as handle:
            template = matcher.encode(handle.read(), choice=choice)
    except FaceRefusal as refusal:
        return None, refusal.code
    return template.descriptor.tobytes(), template.quality


def _encode(path: str) -> Encoding:
    return _encoding(_measure(path))


def _encoding(measurement: Measurement) -> Encoding:
    blob, outcome = measurement
    if blob is not None:
        return blob, None
    assert isinstance(outcome, str)
    return None, outcome


_thread = threading.local()


def encode_here(config: EncoderConfig, path: str) -> Encoding:
    """Encode in this thread, for workers that are not an EncoderPool's (a Dask cluster's).
    Each thread builds its own matcher on first use and keeps it: the detectors are not safe
    to share between threads, and loading the models per photo would cost more than the
    photo."""
    if getattr(_thread, "config", None) != config:
        _one_thread()
        engine = load_engine(config.engine, config.detect_max_side)
        _thread.matcher, _thread.config = Matcher(engine, config.limits, config.policy), config
    return _encoding(_measured(_thread.matcher, config.choice, path))


def _probe(data: bytes, box: Box | None) -> FaceTemplate:
    assert _worker is not None, "not in an encoder process"
    matcher, choice = _worker
    return matcher.encode(data, box, choice)


def _ready() -> None:
    assert _worker is not None, "not in an encoder process"


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

    def probe(self, data: bytes, box: Box | None) -> Future[FaceTemplate]:
        return self._pool.submit(_probe, data, box)

    def warm(self) -> None:
        """Start every worker and load its models now rather than on the first photo."""
        # Waited for, not read: a pool shut down meanwhile cancels these, which is no fault.
        wait([self._pool.submit(_ready) for _ in range(self.workers)])

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class PipelineBusy(Exception):
    """The probe waited its whole time limit without a worker taking it up."""


class PipelineTimeout(Exception):
    """A worker took the probe up, but did not finish it within the time limit."""


class ProbeEncoder:
    """Probes encoded in worker processes sized to the cores, so a search holds neither the
    service's event loop nor its interpreter lock, under a time limit. A worker that dies
    (out of memory on a hostile photo, say) breaks its pool; the pool is then replaced and the
    photo refused, so one photo never stops the searches after it."""

    def __init__(self, config: EncoderConfig, workers: int, timeout_s: float) -> None:
        self._config, self._workers, self.timeout_s = config, workers, timeout_s
        self._lock = threading.Lock()
        self._pool = EncoderPool(config, workers)

    def warm(self) -> None:
        self._pool.warm()

    def encode(self, data: bytes, box: Box | None) -> FaceTemplate:
        """The probe's template; FaceRefusal, PipelineBusy or PipelineTimeout if none."""
        pool = self._pool
        future = pool.probe(data, box)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            if future.cancel():
                raise PipelineBusy from None
            raise PipelineTimeout from None
        except BrokenProcessPool:
            self._replace(pool)
            raise FaceRefusal(
                "unsupported_image",
                "The photo could not be processed; if it is an ordinary photo, send it again.",
            ) from None

    def _replace(self, broken: EncoderPool) -> None:
        with self._lock:
            if self._pool is broken:
                broken.close()
                self._pool = EncoderPool(self._config, self._workers)

    def close(self) -> None:
        self._pool.close()
