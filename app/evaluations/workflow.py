"""An independent tester's evaluation jobs: queued from their photo set, each read only by the
tester who sent it, its photos deleted when it ends. Every step is audited under the job's
reference; the audit log holds identifiers and counts, never a photo or a tester's label."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, defer

from app.accounts.service import actor_of
from app.audit import trail
from app.core.database import rows_changed
from app.core.refusals import Code, Refusal
from app.evaluations.models import EvaluationJob, EvaluationPhoto, JobStatus
from app.evaluations.photo_set import PhotoSet
from index import TemplateKeys

COMPONENT = "evaluation"
UNFINISHED = (JobStatus.queued, JobStatus.running)
_DAY = timedelta(days=1)
# The actor of a job's start and end: the service's own runner, not a person.
RUNNER = "service:evaluations"


def job_ref(job_id: int) -> str:
    return f"evaluation:{job_id}"


def photo_context(job_id: int, position: int) -> str:
    """What a kept photo's seal is bound to: its job and its row in the manifest."""
    return f"evaluation-photo:{job_id}:{position}"


def check_may_send(session: Session, tester: int, per_day: int, now: datetime) -> None:
    """Refused while the tester's job before is unfinished, or when `per_day` were sent in
    the last day."""
    unfinished = session.scalar(
        select(EvaluationJob.id).where(
            EvaluationJob.tester_id == tester, EvaluationJob.status.in_(UNFINISHED)
        )
    )
    if unfinished is not None:
        raise Refusal(
            Code.too_many_evaluations,
            f"Your evaluation {unfinished} is not finished; send the next when it is.",
            retry_after_s=60,
        )
    recent = select(EvaluationJob.submitted_at).where(
        EvaluationJob.tester_id == tester, EvaluationJob.submitted_at > now - _DAY
    )
    sent = session.scalar(select(func.count()).select_from(recent.subquery())) or 0
    if sent >= per_day:
        oldest = min(session.scalars(recent))
        wait = max(1, int((oldest + _DAY - now).total_seconds()) + 1)
        raise Refusal(
            Code.too_many_evaluations,
            f"You have sent {sent} evaluations in the last day, the most allowed; try again "
            f"in {wait} s.",
            retry_after_s=wait,
        )


def submit(
    session: Session, tester: int, photo_set: PhotoSet, keys: TemplateKeys, per_day: int
) -> EvaluationJob:
    """Queue the set as the tester's next job, its photos sealed until it ends: refused while
    their job before is unfinished, or when `per_day` were sent in the last day. The check
    and the queueing are one step in every process (the audit trail's lock), so jobs sent at
    once cannot all pass it."""
    now = datetime.now(UTC)
    with session.begin():
        trail.serialise(session)
        check_may_send(session, tester, per_day, now)
        job = EvaluationJob(
            tester_id=tester,
            status=JobStatus.queued,
            submitted_at=now,
            photo_set_sha256=photo_set.sha256,
            photos=len(photo_set.photos),
            people=photo_set.people,
            labels=json.dumps(photo_set.labels),
            encoded=0,
        )
        session.add(job)
        session.flush()
        session.add_all(
            EvaluationPhoto(
                job_id=job.id,
                position=position,
                person=photo.person,
                labels=json.dumps(photo.labels, sort_keys=True),
                sha256=photo.sha256,
                sealed=keys.seal(photo.data, photo_context(job.id, position)),
            )
            for position, photo in enumerate(photo_set.photos)
        )
        trail.record(
            session,
            COMPONENT,
            "evaluation.submit",
            actor_of(tester),
            "success",
            job_ref(job.id),
            photos=job.photos,
            people=job.people,
            labels=len(photo_set.labels),
        )
    return job


def testers_job(session: Session, job_id: int, tester: int) -> EvaluationJob:
    """The tester's own job; another's, or none, is not found alike."""
    job = session.get(EvaluationJob, job_id)
    if job is None or job.tester_id != tester:
        raise Refusal(Code.evaluation_not_found, "You have no evaluation by that number.")
    return job


def testers_jobs(session: Session, tester: int) -> list[EvaluationJob]:
    """The tester's jobs, newest first, their results not read."""
    return list(
        session.scalars(
            select(EvaluationJob)
            .options(defer(EvaluationJob.results, raiseload=True))
            .where(EvaluationJob.tester_id == tester)
            .order_by(EvaluationJob.id.desc())
        )
    )


def claim_next(session: Session) -> int | None:
    """Take the oldest queued job to run, if any: of runners racing for it, one wins."""
    with session.begin():
        queued = session.scalar(
            select(EvaluationJob.id)
            .where(EvaluationJob.status == JobStatus.queued)
            .order_by(EvaluationJob.id)
        )
        if queued is None:
            return None
        taken = rows_changed(
            session,
            update(EvaluationJob)
            .where(EvaluationJob.id == queued, EvaluationJob.status == JobStatus.queued)
            .values(status=JobStatus.running, started_at=datetime.now(UTC), encoded=0)
            .execution_options(synchronize_session=False),
        )
        if taken != 1:
            return None
        trail.record(session, COMPONENT, "evaluation.start", RUNNER, "success", job_ref(queued))
    return queued


def requeue_interrupted(session: Session) -> int:
    """Jobs left running by a service that stopped are queued again, their photos still
    kept; how many. (One service process runs evaluations.)"""
    with session.begin():
        return rows_changed(
            session,
            update(EvaluationJob)
            .where(EvaluationJob.status == JobStatus.running)
            .values(status=JobStatus.queued, started_at=None, encoded=0)
            .execution_options(synchronize_session=False),
        )


def finish(
    session: Session,
    job_id: int,
    results: str | None,
    failure: str | None,
    model_id: str,
    point_sha256: str,
) -> None:
    """End the job with its results or the reason it failed, and delete its photos, their
    people and labels, in one transaction; audited with the results' SHA-256."""
    with session.begin():
        job = session.get(EvaluationJob, job_id)
        assert job is not None
        job.status = JobStatus.done if failure is None else JobStatus.failed
        job.finished_at = datetime.now(UTC)
        job.results, job.failure = results, failure
        job.model_id, job.operating_point_sha256 = model_id, point_sha256
        if failure is None:
            job.encoded = job.photos
        # Of each photo only its hash stays: the results hold what its person and labels gave.
        deleted = rows_changed(
            session,
            update(EvaluationPhoto)
            .where(EvaluationPhoto.job_id == job_id, EvaluationPhoto.sealed.is_not(None))
            .values(sealed=None, person=None, labels=None)
            .execution_options(synchronize_session=False),
        )
        trail.record(
            session,
            COMPONENT,
            "evaluation.end",
            RUNNER,
            job.status.value,
            job_ref(job_id),
            photos_deleted=deleted,
            results_sha256=hashlib.sha256(results.encode()).hexdigest() if results else None,
        )
