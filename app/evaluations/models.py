"""Independent testers' evaluation jobs (RCW 43.386.050) and the photos each was sent.

A job's photos are kept, sealed, with their person and labels, only until it ends; their
SHA-256 stays beside its results. A tester's photos never meet the licence gallery: nothing
here refers to a licence record, a licence photo or a search."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, Id64, enum_column, utc_now


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class EvaluationJob(Base):
    __tablename__ = "evaluation_jobs"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    tester_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, 16), index=True)
    submitted_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The submitted archive's SHA-256, and what it held.
    photo_set_sha256: Mapped[str] = mapped_column(String(64))
    photos: Mapped[int] = mapped_column(Integer)
    people: Mapped[int] = mapped_column(Integer)
    labels: Mapped[str] = mapped_column(Text)  # the label names, a JSON list
    # Progress: photos encoded so far in the current run.
    encoded: Mapped[int] = mapped_column(Integer, default=0)
    # The run holding a running job (each runner's own random id), until its lease lapses:
    # a runner that stopped without saying so gives the job up to the next one then.
    runner: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    # The engine and operating point it was measured at, once it ran.
    model_id: Mapped[str | None] = mapped_column(String(64))
    operating_point_sha256: Mapped[str | None] = mapped_column(String(64))
    results: Mapped[str | None] = mapped_column(Text)  # calibration.evaluation.Evaluation
    failure: Mapped[str | None] = mapped_column(Text)


class EvaluationPhoto(Base):
    __tablename__ = "evaluation_photos"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("evaluation_jobs.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # its row in the tester's manifest
    # The tester's own identifier, and the photo's value of each label (a JSON object): None,
    # like the photo itself, once the job has ended.
    person: Mapped[str | None] = mapped_column(String(64))
    labels: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    # The photo, sealed; None once the job has ended.
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
