"""An evaluation job as its tester reads it (docs/evaluations.md)."""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel

from app.evaluations.models import EvaluationJob, JobStatus
from calibration.evaluation import Evaluation


class Progress(BaseModel):
    encoded: int
    photos: int


class EvaluationView(BaseModel):
    id: int
    status: JobStatus
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    photo_set_sha256: str
    photos: int
    people: int
    labels: list[str]
    progress: Progress
    # The engine and operating point it was measured at, once it ended.
    model_id: str | None
    operating_point_sha256: str | None
    results: Evaluation | None
    failure: str | None

    @classmethod
    def of(cls, job: EvaluationJob, with_results: bool = True) -> EvaluationView:
        """The job as its tester reads it; without its results for a list of jobs (whose
        results are not read)."""
        results = job.results if with_results else None
        return cls(
            id=job.id,
            status=job.status,
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            photo_set_sha256=job.photo_set_sha256,
            photos=job.photos,
            people=job.people,
            labels=json.loads(job.labels),
            progress=Progress(encoded=job.encoded, photos=job.photos),
            model_id=job.model_id,
            operating_point_sha256=job.operating_point_sha256,
            results=Evaluation.model_validate_json(results) if results else None,
            failure=job.failure,
        )
