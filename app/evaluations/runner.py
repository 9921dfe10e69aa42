"""The service's evaluation runner: queued jobs, one at a time, in a thread of their own and a
worker process of their own, so a tester's photos never take a probe worker or a request
thread from a search. A job interrupted by a stop is queued again at the next start."""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.evaluations.models import EvaluationJob, EvaluationPhoto
from app.evaluations.workflow import claim_next, finish, photo_context, requeue_interrupted
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
_IN_FLIGHT = 4
_NICENESS = 10


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
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="evaluations", daemon=True)

    def start(self) -> None:
        with self._sessions() as session:
            interrupted = requeue_interrupted(session)
        if interrupted:
            log.info("%d interrupted evaluation job(s) queued again", interrupted)
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
                    job_id = claim_next(session)
                if job_id is not None:
                    self._evaluate(job_id)
                    continue
            except Exception as problem:  # the database away a while: the runner carries on
                log.error("evaluation runner: %s", type(problem).__name__)
            self._wake.wait(self._poll_s)
            self._wake.clear()

    def _evaluate(self, job_id: int) -> None:
        try:
            outcome = self._measured(job_id)
        except Exception as problem:  # a job that cannot be measured fails; the runner goes on
            log.error("evaluation %d failed: %s", job_id, type(problem).__name__)
            outcome = None, "The evaluation could not be completed."
        if outcome is None:
            return  # stopping: queued again at the next start
        results, failure = outcome
        try:
            self._finish(job_id, results, failure)
        except Exception as problem:
            # Its results could not be recorded: it fails, and its photos go, all the same.
            log.error("evaluation %d not recorded: %s", job_id, type(problem).__name__)
            self._finish(job_id, None, "The evaluation's results could not be recorded.")

    def _finish(self, job_id: int, results: str | None, failure: str | None) -> None:
        point = self._measuring.point
        with self._sessions() as session:
            finish(session, job_id, results, failure, point.model_id, self._measuring.point_sha256)

    def _measured(self, job_id: int) -> tuple[str | None, str | None] | None:
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
                assert sealed is not None, "a running job's photos are kept"
                data = self._keys.open(sealed, photo_context(job_id, position))
                in_flight.append(pool.measure_photo(data))
                if len(in_flight) == _IN_FLIGHT:
                    entries.append(self._measurement(job_id, in_flight.popleft(), len(entries)))
            while in_flight:
                entries.append(self._measurement(job_id, in_flight.popleft(), len(entries)))
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

    def _measurement(self, job_id: int, future: Future[Measurement], before: int) -> Entry:
        """The photo's entry, its progress written every _PROGRESS_EVERY photos."""
        measured = entry(future.result())
        if (before + 1) % _PROGRESS_EVERY == 0:
            self._progress(job_id, before + 1)
        return measured

    def _progress(self, job_id: int, done: int) -> None:
        with self._sessions.begin() as session:
            job = session.get(EvaluationJob, job_id)
            if job is not None:
                job.encoded = done
