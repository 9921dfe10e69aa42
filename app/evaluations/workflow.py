"""An independent tester's evaluation jobs: queued from their photo set, each read only by the
tester who sent it, its photos deleted when it ends. Every step is audited under the job's
reference; the audit log holds identifiers and counts, never a photo or a tester's label."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
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
# How long a runner holds a job between words (it renews the lease a few times within it
# while it runs): one that stopped without giving its job back loses it this long after.
LEASE = timedelta(minutes=10)


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


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Queued, or running under a lease that has lapsed (its runner stopped without a word),
    or under none (left running by a service from before leases)."""
    lapsed = or_(EvaluationJob.lease_until.is_(None), EvaluationJob.lease_until < now)
    return or_(
        EvaluationJob.status == JobStatus.queued,
        and_(EvaluationJob.status == JobStatus.running, lapsed),
    )


def _held_by(job_id: int, runner: str) -> ColumnElement[bool]:
    return and_(
        EvaluationJob.id == job_id,
        EvaluationJob.status == JobStatus.running,
        EvaluationJob.runner == runner,
    )


def claim_next(session: Session, runner: str, now: datetime) -> int | None:
    """Take the oldest job there is to run for `runner`, under a lease: of runners racing for
    it, in one process or several, one wins."""
    with session.begin():
        job = session.execute(
            select(EvaluationJob.id, EvaluationJob.status)
            .where(_claimable(now))
            .order_by(EvaluationJob.id)
        ).first()
        if job is None:
            return None
        taken = rows_changed(
            session,
            update(EvaluationJob)
            .where(EvaluationJob.id == job.id, _claimable(now))
            .values(
                status=JobStatus.running,
                runner=runner,
                lease_until=now + LEASE,
                started_at=now,
                encoded=0,
            )
            .execution_options(synchronize_session=False),
        )
        if taken != 1:
            return None
        trail.record(
            session,
            COMPONENT,
            "evaluation.start",
            RUNNER,
            "success",
            job_ref(job.id),
            runner=runner,
            lease_lapsed=job.status is JobStatus.running,
        )
    return job.id


def renew(session: Session, job_id: int, runner: str, encoded: int, now: datetime) -> bool:
    """Write the run's progress and renew its lease; False when the job is no longer the
    runner's (its lease lapsed and another runner took it up)."""
    with session.begin():
        renewed = rows_changed(
            session,
            update(EvaluationJob)
            .where(_held_by(job_id, runner))
            .values(encoded=encoded, lease_until=now + LEASE)
            .execution_options(synchronize_session=False),
        )
    return renewed == 1


def give_back(session: Session, job_id: int, runner: str) -> None:
    """A runner stopping mid-job queues it again at once, its photos kept, for the next start
    or another process to run."""
    with session.begin():
        rows_changed(
            session,
            update(EvaluationJob)
            .where(_held_by(job_id, runner))
            .values(
                status=JobStatus.queued, runner=None, lease_until=None, started_at=None, encoded=0
            )
            .execution_options(synchronize_session=False),
        )


def finish(
    session: Session,
    job_id: int,
    runner: str,
    results: str | None,
    failure: str | None,
    model_id: str,
    point_sha256: str,
) -> bool:
    """End the runner's job with its results or the reason it failed, and delete its photos,
    their people and labels, in one transaction; audited with the results' SHA-256. False,
    and nothing written, when the job is no longer the runner's: the run holding it ends it."""
    status = JobStatus.done if failure is None else JobStatus.failed
    ended: dict[str, object] = {
        "status": status,
        "finished_at": datetime.now(UTC),
        "results": results,
        "failure": failure,
        "model_id": model_id,
        "operating_point_sha256": point_sha256,
        "runner": None,
        "lease_until": None,
    }
    if failure is None:
        ended["encoded"] = EvaluationJob.photos
    with session.begin():
        ending = (
            update(EvaluationJob)
            .where(_held_by(job_id, runner))
            .values(ended)
            .execution_options(synchronize_session=False)
        )
        if rows_changed(session, ending) != 1:
            return False
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
            status.value,
            job_ref(job_id),
            photos_deleted=deleted,
            results_sha256=hashlib.sha256(results.encode()).hexdigest() if results else None,
        )
    return True
