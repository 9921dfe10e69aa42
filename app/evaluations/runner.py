"""The service's evaluation runner: queued jobs, one at a time, in a thread of their own and a
worker process of their own, so a tester's photos never take a probe worker or a request
thread from a search. Each job is held under a lease renewed while it runs: a runner stopping
gives its job back, and one that died loses it when the lease lapses, to whichever runner, in
this process or another, comes next."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.evaluations.models import EvaluationPhoto
from app.evaluations.workflow import (
    LEASE,
    claim_next,
    finish,
    give_back,
    photo_context,
    renew,
)
from calibration.check import CheckRefused
from calibration.evaluation import evaluate
from calibration.photos import NO_LIMITS, Entry, Photo, encoded, entry
from index import TemplateKeys
from matcher import EncoderConfig, EncoderPool, MatchRule, QualityPolicy, engine_spec
from matcher.operating_point import OperatingPoint
from matcher.pool import Measurement

log = logging.getLogger(__name__)

# How often progress is written, in photos; how many are opened and given to the worker at
# once; how much lower than the probe workers the evaluation worker runs.
_PROGRESS_EVERY = 25
# How often a running job's lease is renewed: well within it.
_RENEW_EVERY_S = LEASE.total_seconds() / 4
_IN_FLIGHT = 4
_NICENESS = 10


class LeaseLost(Exception):
    """The job's lease lapsed and another runner holds it now: this one lets it go."""


@dataclass(frozen=True)
class Measuring:
    """What a job is measured with: the live searches' encoder, quality gate, operating
    point and decision rule."""

    encoder: EncoderConfig
    policy: QualityPolicy
    point: OperatingPoint
    point_sha256: str
    rule: MatchRule


class EvaluationRunner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        keys: TemplateKeys,
        measuring: Measuring,
        poll_s: float = 2.0,
    ) -> None:
        self._sessions, self._keys, self._measuring = sessions, keys, measuring
        self._poll_s = poll_s
        # Whose lease a job is under: this runner's, never one before or beside it.
        self.id = secrets.token_hex(16)
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="evaluations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A job was queued: look now, not at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._sessions() as session:
                    job_id = claim_next(session, self.id, datetime.now(UTC))
                if job_id is not None:
                    self._evaluate(job_id)
                    continue
            except Exception as problem:  # the database away a while: the runner carries on
                log.error("evaluation runner: %s", type(problem).__name__)
            self._wake.wait(self._poll_s)
            self._wake.clear()

    def _evaluate(self, job_id: int) -> None:
        try:
            with Lease(self._sessions, job_id, self.id, _RENEW_EVERY_S) as lease:
                outcome = self._measured(job_id, lease)
        except LeaseLost:
            log.warning("evaluation %d: its lease lapsed and another runner took it", job_id)
            return
        except Exception as problem:  # a job that cannot be measured fails; the runner goes on
            log.error("evaluation %d failed: %s", job_id, type(problem).__name__)
            outcome = None, "The evaluation could not be completed."
        if outcome is None:  # stopping: queued again, for the next start or another process
            with self._sessions() as session:
                give_back(session, job_id, self.id)
            return
        results, failure = outcome
        try:
            self._finish(job_id, results, failure)
        except Exception as problem:
            # Its results could not be recorded: it fails, and its photos go, all the same
            # (or, if that cannot be written either, it runs again once its lease lapses).
            log.error("evaluation %d not recorded: %s", job_id, type(problem).__name__)
            self._finish(job_id, None, "The evaluation's results could not be recorded.")

    def _finish(self, job_id: int, results: str | None, failure: str | None) -> None:
        point, sha256 = self._measuring.point, self._measuring.point_sha256
        with self._sessions() as session:
            if not finish(session, job_id, self.id, results, failure, point.model_id, sha256):
                log.warning("evaluation %d: ended by the runner that took it over", job_id)

    def _measured(self, job_id: int, lease: Lease) -> tuple[str | None, str | None] | None:
        """The job's results as JSON, or the sentence saying why there are none; None if
        the runner was stopped meanwhile."""
        measuring = self._measuring
        with self._sessions() as session:
            rows = session.execute(
                select(
                    EvaluationPhoto.position,
                    EvaluationPhoto.person,
                    EvaluationPhoto.labels,
                    EvaluationPhoto.sealed,
                )
                .where(EvaluationPhoto.job_id == job_id)
                .order_by(EvaluationPhoto.position)
            ).all()
        photos = [Photo(Path(str(position)), person or "") for position, person, _, _ in rows]
        labels = [json.loads(values or "{}") for _, _, values, _ in rows]
        entries: list[Entry] = []
        in_flight: deque[Future[Measurement]] = deque()
        # Every face measured, as calibration measures them; the gate is applied after. A few
        # photos are opened at a time, at a low priority beside the probe workers.
        config = replace(measuring.encoder, policy=NO_LIMITS)
        with EncoderPool(config, workers=1, niceness=_NICENESS) as pool:
            for position, _, _, sealed in rows:
                if self._stopping.is_set():
                    return None
                lease.check()
                assert sealed is not None, "a running job's photos are kept"
                data = self._keys.open(sealed, photo_context(job_id, position))
                in_flight.append(pool.measure_photo(data))
                if len(in_flight) == _IN_FLIGHT:
                    entries.append(self._measurement(lease, in_flight.popleft()))
            while in_flight:
                entries.append(self._measurement(lease, in_flight.popleft()))
        dimension = engine_spec(measuring.encoder.engine).dimension
        try:
            evaluation = evaluate(
                encoded(photos, entries, dimension),
                labels,
                measuring.point,
                measuring.policy,
                measuring.rule,
            )
        except CheckRefused as refused:
            return None, f"The photo set could not be measured: {refused}."
        return evaluation.model_dump_json(), None

    def _measurement(self, lease: Lease, future: Future[Measurement]) -> Entry:
        """The photo's entry, the progress written every _PROGRESS_EVERY photos."""
        measured = entry(future.result())
        lease.done += 1
        if lease.done % _PROGRESS_EVERY == 0:
            lease.renew()
        lease.check()
        return measured


class Lease:
    """A running job's lease, renewed every `every_s` by a thread of its own while the job
    runs (starting the worker, a slow photo or measuring the results writes no progress),
    and with the progress when it is written. A passing database error is tried again at
    the next renewal; a job another runner has taken since is let go (`check`)."""

    def __init__(
        self, sessions: sessionmaker[Session], job_id: int, runner: str, every_s: float
    ) -> None:
        self._sessions, self._job_id = sessions, job_id
        self._runner, self._every_s = runner, every_s
        self.done = 0
        self._lost, self._ended = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._keep, name="evaluation-lease", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._ended.set()
        self._thread.join()

    def renew(self) -> None:
        try:
            with self._sessions() as session:
                now = datetime.now(UTC)
                if not renew(session, self._job_id, self._runner, self.done, now):
                    self._lost.set()
        except SQLAlchemyError as problem:
            log.warning(
                "evaluation %d: lease not renewed: %s", self._job_id, type(problem).__name__
            )

    def check(self) -> None:
        if self._lost.is_set():
            raise LeaseLost

    def _keep(self) -> None:
        while not self._ended.wait(self._every_s):
            self.renew()
