"""Encoding on every core: worker processes that each load the models once.

Used by enrolment, by the service for probes and by the benchmarks, so all three run the same
pipeline.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.synchronize import Semaphore

import cv2

from matcher.decode import DecodeLimits, check_photo
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


def _start(config: EncoderConfig, started: Semaphore | None = None, niceness: int = 0) -> None:
    """Load this worker's matcher; then say so (`started`), for a pool that waits until each
    of its workers can take a photo up at once."""
    global _worker
    _one_thread()
    if niceness:
        os.nice(niceness)
    engine = load_engine(config.engine, config.detect_max_side)
    matcher = Matcher(engine, config.limits, config.policy)
    _worker = (matcher, config.choice)
    if started is not None:
        started.release()


def _measure(path: str) -> Measurement:
    with open(path, "rb") as handle:
        return _measure_photo(handle.read())


def _measure_photo(data: bytes) -> Measurement:
    assert _worker is not None, "not in an encoder process"
    return _measured(*_worker, data)


def _measured(matcher: Matcher, choice: FaceChoice, data: bytes) -> Measurement:
    try:
        template = matcher.encode(data, choice=choice)
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
# How often a pool waiting for its workers to start looks whether one died instead.
_STARTED_POLL_S = 0.25


def encode_here(config: EncoderConfig, path: str) -> Encoding:
    """Encode in this thread, for workers that are not an EncoderPool's (a Dask cluster's).
    Each thread builds its own matcher on first use and keeps it: the detectors are not safe
    to share between threads, and loading the models per photo would cost more than the
    photo."""
    if getattr(_thread, "config", None) != config:
        _one_thread()
        engine = load_engine(config.engine, config.detect_max_side)
        _thread.matcher, _thread.config = Matcher(engine, config.limits, config.policy), config
    with open(path, "rb") as handle:
        return _encoding(_measured(_thread.matcher, config.choice, handle.read()))


def _probe(data: bytes, box: Box | None) -> FaceTemplate:
    assert _worker is not None, "not in an encoder process"
    matcher, choice = _worker
    return matcher.encode(data, box, choice)


def _ready() -> None:
    assert _worker is not None, "not in an encoder process"


class EncoderPool:
    """A process pool (spawned, not forked: no database connection or lock is inherited)."""

    def __init__(self, config: EncoderConfig, workers: int = 0, niceness: int = 0) -> None:
        """`niceness`: how much lower than this process the workers run (os.nice)."""
        self.workers = workers or os.cpu_count() or 1
        spawn = multiprocessing.get_context("spawn")
        self._started = spawn.Semaphore(0)
        self._ready_workers = 0
        self._warming: list[Future[None]] = []
        self._lock = threading.Lock()
        self._pool = ProcessPoolExecutor(
            self.workers,
            mp_context=spawn,
            initializer=_start,
            initargs=(config, self._started, niceness),
        )

    def submit(self, path: str) -> Future[Encoding]:
        return self._pool.submit(_encode, path)

    def measure(self, path: str) -> Future[Measurement]:
        return self._pool.submit(_measure, path)

    def measure_photo(self, data: bytes) -> Future[Measurement]:
        return self._pool.submit(_measure_photo, data)

    def probe(self, data: bytes, box: Box | None) -> Future[FaceTemplate]:
        return self._pool.submit(_probe, data, box)

    @property
    def ready_workers(self) -> int:
        """How many workers have loaded their models."""
        return self._ready_workers

    def ready(self, timeout_s: float | None = None) -> bool:
        """Start every worker (once) and wait until each has loaded its models: from then on
        a photo given to a free worker is taken up at once. False if they had not within
        `timeout_s`; BrokenProcessPool if one died starting."""
        if self._ready_workers == self.workers:
            return True
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else float("inf"))
        # One thread at a time counts the workers as they say they have started.
        if not self._lock.acquire(timeout=-1 if timeout_s is None else timeout_s):
            return False
        try:
            if not self._warming:
                self._warming = [self._pool.submit(_ready) for _ in range(self.workers)]
            while self._ready_workers < self.workers:
                left = max(0.0, deadline - time.monotonic())
                if self._started.acquire(timeout=min(_STARTED_POLL_S, left)):
                    self._ready_workers += 1
                elif any(f.cancelled() for f in self._warming):
                    return False  # the pool is closing
                elif any(f.done() and not f.cancelled() and f.exception() for f in self._warming):
                    raise BrokenProcessPool("a probe worker died starting")
                elif time.monotonic() >= deadline:
                    return False
            return True
        finally:
            self._lock.release()

    def warm(self) -> None:
        """Start every worker and load its models now rather than on the first photo."""
        self.ready()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _Turns:
    """Free workers, handed out in the order probes asked for one: a semaphore would let the
    thread that just gave a worker back take it again before those waiting, and under load
    some probes would wait out their time while others went round again and again."""

    def __init__(self, free: int, most_waiting: int) -> None:
        self._free, self._most_waiting = free, most_waiting
        self._lock = threading.Lock()
        self._turns: deque[threading.Event] = deque()

    @property
    def waiting(self) -> int:
        return len(self._turns)

    def take(self, timeout_s: float) -> bool:
        """A worker, within `timeout_s`; False if none came free in time, or at once if
        `most_waiting` are waiting already."""
        with self._lock:
            if self._free and not self._turns:
                self._free -= 1
                return True
            if len(self._turns) >= self._most_waiting:
                return False
            turn = threading.Event()
            self._turns.append(turn)
        if turn.wait(timeout_s):
            return True
        with self._lock:
            if turn.is_set():  # handed one just as the time ran out
                return True
            self._turns.remove(turn)
            return False

    def give_back(self) -> None:
        with self._lock:
            if self._turns:
                self._turns.popleft().set()
            else:
                self._free += 1


class PipelineBusy(Exception):
    """Every probe worker was busy for the probe's whole wait, or more probes were already
    waiting than the line holds."""


class PipelineStarting(Exception):
    """The probe workers had not loaded their models within the start-up limit."""


class PipelineTimeout(Exception):
    """A worker took the probe up, but did not finish it within the time limit."""


class ProbeEncoder:
    """Probes encoded in worker processes sized to the cores, so a search holds neither the
    service's event loop nor its interpreter lock, under a time limit that counts the work on
    the probe only: the photo's cheap checks come first, in the caller's thread; then it
    waits its turn in a bounded line for a free worker (at most `timeout_s`), in a pool whose
    workers have all started; only then does its clock start. A worker stays taken until it
    has finished, even after its probe ran out of time, so no probe ever queues behind
    another inside the pool.

    A worker that dies (out of memory on a hostile photo, say) breaks its pool; the pool is
    then replaced and the photo refused, so one photo never stops the searches after it."""

    def __init__(
        self,
        config: EncoderConfig,
        workers: int,
        timeout_s: float,
        start_timeout_s: float = 120.0,
        waiting: int | None = None,
    ) -> None:
        self._config, self.timeout_s, self.start_timeout_s = config, timeout_s, start_timeout_s
        self._lock = threading.Lock()
        self._pool = EncoderPool(config, workers)
        self.workers = self._pool.workers
        # Probes may wait for a worker, eight per worker and at most 16 in all: past that a
        # probe is refused at once, which leaves most of the server's 40 request threads to
        # everything else.
        most_waiting = min(8 * self.workers, 16) if waiting is None else waiting
        self._free = _Turns(self.workers, most_waiting)

    @property
    def ready_workers(self) -> int:
        return self._pool.ready_workers

    @property
    def waiting(self) -> int:
        """Probes admitted and not yet taken up by a worker."""
        return self._free.waiting

    def warm(self) -> None:
        self._pool.warm()

    def encode(self, data: bytes, box: Box | None) -> FaceTemplate:
        """The probe's template; FaceRefusal, PipelineBusy, PipelineStarting or
        PipelineTimeout if none."""
        check_photo(data, self._config.limits)
        if not self._free.take(self.timeout_s):
            raise PipelineBusy
        pool = self._pool
        try:
            if not pool.ready(self.start_timeout_s):
                self._free.give_back()
                raise PipelineStarting
            future = pool.probe(data, box)
        except BrokenProcessPool:
            self._free.give_back()
            raise self._broken(pool) from None
        future.add_done_callback(lambda _: self._free.give_back())
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise PipelineTimeout from None
        except BrokenProcessPool:
            raise self._broken(pool) from None

    def _broken(self, broken: EncoderPool) -> FaceRefusal:
        """Replace the broken pool; the refusal its photo gets."""
        with self._lock:
            if self._pool is broken:
                broken.close()
                self._pool = EncoderPool(self._config, self.workers)
        return FaceRefusal(
            "unsupported_image",
            "The photo could not be processed; if it is an ordinary photo, send it again.",
        )

    def close(self) -> None:
        self._pool.close()
