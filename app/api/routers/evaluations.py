"""The independent tester's door (RCW 43.386.050): a labelled photo set of their own sent as
an evaluation job, measured outside the request path, and the job read back with its
progress and results. Nothing here reaches the licence gallery."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from app.api.deps import Caller, ServicesDep, SessionDep, require
from app.api.schemas import RowId, problems
from app.audit import trail
from app.core.refusals import Code, Refusal
from app.evaluations.models import EvaluationJob
from app.evaluations.photo_set import Limits, read_photo_set
from app.evaluations.schemas import EvaluationView
from app.evaluations.workflow import (
    COMPONENT,
    check_may_send,
    job_ref,
    submit,
    testers_job,
    testers_jobs,
)
from auth import Permission

router = APIRouter(
    prefix="/v1/evaluations",
    tags=["evaluations"],
    responses=problems(401, 403, 404, 413, 422, 429),
)

Tester = Annotated[Caller, Depends(require(Permission.evaluate))]


ZIP = "application/zip"


@router.post(
    "",
    response_model=EvaluationView,
    status_code=202,
    name="evaluation.submit",
    responses=problems(415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {ZIP: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def submit_evaluation(
    request: Request, services: ServicesDep, session: SessionDep, tester: Tester
) -> EvaluationView:
    """Queue the photo set, the body as a ZIP archive, as an evaluation job; read it back for
    its progress and results. The caller is admitted, and may send one now, before a byte of
    the archive is read; it is read into memory (FACEMATCH_EVALUATION_MAX_BYTES at most),
    never onto disk."""
    settings = services.settings

    def may_send() -> None:
        with trail.refusals_recorded(session, COMPONENT, "evaluation.submit", tester.actor):
            if request.headers.get("content-type", "").split(";")[0].strip() != ZIP:
                raise Refusal(
                    Code.unsupported_media_type, f"Send the photo set as {ZIP}, the body whole."
                )
            with session.begin():
                check_may_send(session, tester.id, settings.evaluations_per_day, datetime.now(UTC))

    def queued(archive: BinaryIO) -> EvaluationJob:
        limits = Limits(
            photos=settings.evaluation_max_photos,
            photo_bytes=settings.max_image_bytes,
            total_bytes=settings.evaluation_max_bytes,
        )
        with trail.refusals_recorded(session, COMPONENT, "evaluation.submit", tester.actor):
            photo_set = read_photo_set(archive, limits)
            return submit(
                session, tester.id, photo_set, services.keys, settings.evaluations_per_day
            )

    await run_in_threadpool(may_send)
    archive = io.BytesIO()
    async for chunk in request.stream():  # bounded by the body limit (app.api.middleware)
        archive.write(chunk)
    archive.seek(0)
    job = await run_in_threadpool(queued, archive)
    request.app.state.evaluations.wake()
    return EvaluationView.of(job)


@router.get("", response_model=list[EvaluationView])
def list_evaluations(session: SessionDep, tester: Tester) -> list[EvaluationView]:
    """The tester's own jobs, newest first, without their results."""
    return [EvaluationView.of(job, with_results=False) for job in testers_jobs(session, tester.id)]


@router.get("/{job_id}", response_model=EvaluationView)
def read_evaluation(job_id: RowId, session: SessionDep, tester: Tester) -> EvaluationView:
    """One of the tester's own jobs: its progress, and its results once it is done."""
    with trail.refusals_recorded(
        session, COMPONENT, "evaluation.read", tester.actor, job_ref(job_id)
    ):
        with session.begin():
            job = testers_job(session, job_id, tester.id)
            trail.record(
                session, COMPONENT, "evaluation.read", tester.actor, "success", job_ref(job_id)
            )
    return EvaluationView.of(job)
