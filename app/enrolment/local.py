"""Enrolment: licence rows and their photos in, records, templates and the index out.

Only the five releasable fields of a row are kept; every other column is dropped on reading
and never written anywhere. Templates are written sealed (index.sealing). Work is committed
in batches, each one transaction, and a photo already enrolled for the engine is skipped, so
a run stopped at any point and started again finishes the job with nothing lost or doubled.
"""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from app.gallery.models import LicenseRecord, Photo, Template
from app.gallery.photos import file_sha256, locate_photo
from app.gallery.release import RELEASED_FIELDS, Release
from app.gallery.store import bump_revision, fuse_people, seal_template
from index import TemplateKeys
from matcher import engine_spec
from matcher.pool import EncoderConfig, EncoderPool, Encoding

PHOTO_COLUMN = "photo"
REQUIRED_COLUMNS = {PHOTO_COLUMN} | set(RELEASED_FIELDS) - {"middle_name"}


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (as opposed to one bad row)."""


@dataclass(frozen=True)
class PhotoJob:
    row: int
    identity: Release
    path: Path
    source_ref: str
    sha256: str


@dataclass(frozen=True)
class AlreadyEnrolled:
    row: int


@dataclass(frozen=True)
class Reject:
    row: int
    photo: str
    reason: str


Item = PhotoJob | AlreadyEnrolled | Reject


@dataclass
class EnrolmentReport:
    rows: int = 0
    enrolled: int = 0
    already_enrolled: int = 0
    rejects: list[Reject] = field(default_factory=list)


@contextmanager
def _manifest_file(manifest: Path) -> Iterator[TextIO]:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            yield handle
    except (UnicodeDecodeError, csv.Error) as problem:
        raise ManifestError(f"the manifest is not a UTF-8 CSV file: {problem}") from None


# A manifest row's number, its five fields (None where they are invalid), its photo reference.
ManifestRow = tuple[int, Release | None, str]


def manifest_rows(manifest: Path) -> Iterator[ManifestRow]:
    """The manifest's rows; other columns never leave here."""
    with _manifest_file(manifest) as handle:
        reader = csv.DictReader(handle)
        missing = REQUIRED_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise ManifestError(f"the manifest lacks the column(s): {', '.join(sorted(missing))}")
        for row_number, row in enumerate(reader, start=2):
            ref = (row.get(PHOTO_COLUMN) or "").strip()
            try:
                identity = Release.model_validate({name: row.get(name) for name in RELEASED_FIELDS})
            except ValidationError:
                identity = None
            yield row_number, identity, ref


def read_manifest(manifest: Path, images: Path) -> Iterator[PhotoJob | Reject]:
    """Rows as photo jobs, or rejects naming the row and why."""
    for row, identity, ref in manifest_rows(manifest):
        if identity is None:
            yield Reject(row, ref, "invalid_record")
            continue
        located = locate_photo(images, ref)
        if isinstance(located, str):
            yield Reject(row, ref, located)
        else:
            yield PhotoJob(row, identity, located, ref, file_sha256(located))


def stored_photos(
    sessions: sessionmaker[Session], images: Path, chunk: int = 1000
) -> Iterator[PhotoJob | Reject]:
    """The enrolled photos, from their stored references under `images`, as jobs for
    re-encoding with another engine. A photo whose file is gone or no longer has the
    SHA-256 it was enrolled with is rejected; `row` is the photo's id."""
    after = 0
    while True:
        with sessions() as session:
            rows = session.execute(
                select(Photo, LicenseRecord)
                .join(LicenseRecord)
                .where(Photo.id > after)
                .order_by(Photo.id)
                .limit(chunk)
            ).all()
        for photo, record in rows:
            located = locate_photo(images, photo.source_ref)
            if isinstance(located, str):
                yield Reject(photo.id, photo.source_ref, located)
            elif file_sha256(located) != photo.sha256:
                yield Reject(photo.id, photo.source_ref, "photo_changed")
            else:
                identity = Release.model_validate(record)
                yield PhotoJob(photo.id, identity, located, photo.source_ref, photo.sha256)
        if len(rows) < chunk:
            return
        after = rows[-1][0].id


def count_photos(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Photo)) or 0


def count_rows(manifest: Path) -> int:
    with _manifest_file(manifest) as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


class Enrolment:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        encoder: EncoderConfig,
        keys: TemplateKeys,
        workers: int = 0,
        batch_size: int = 256,
    ) -> None:
        self.sessions = sessions
        self.keys = keys
        self.model_id = engine_spec(encoder.engine).model_id
        self.metric = engine_spec(encoder.engine).metric
        self.encoder = encoder
        self.workers = workers
        self.batch_size = batch_size

    def run(
        self, items: Iterable[PhotoJob | Reject], progress: tqdm | None = None
    ) -> EnrolmentReport:
        """Encode the photos not yet enrolled on this machine's cores, and record them."""
        with EncoderPool(self.encoder, self.workers) as pool:
            return self.record(self._encoded(pool, self.new_only(items)), progress)

    def record(
        self, encoded: Iterable[tuple[Item, Encoding | None]], progress: tqdm | None = None
    ) -> EnrolmentReport:
        """Write encoded photos in batches, each one transaction, and count the rest."""
        report = EnrolmentReport()
        batch: list[tuple[PhotoJob, bytes]] = []
        for item, outcome in encoded:
            report.rows += 1
            if progress is not None:
                progress.update(1)
            if isinstance(item, AlreadyEnrolled):
                report.already_enrolled += 1
                continue
            if isinstance(item, Reject):
                report.rejects.append(item)
                continue
            assert outcome is not None, "a photo job comes with its encoding"
            descriptor, refusal = outcome
            if refusal is not None:
                report.rejects.append(Reject(item.row, item.source_ref, refusal))
                continue
            assert descriptor is not None, "an encoding without a refusal has a template"
            batch.append((item, descriptor))
            if len(batch) >= self.batch_size:
                report.enrolled += self._write(batch)
                batch = []
        if batch:
            report.enrolled += self._write(batch)
        return report

    def new_only(self, items: Iterable[PhotoJob | Reject]) -> Iterator[Item]:
        """Drop photos that already have a template of this engine, a batch at a time."""
        chunk: list[PhotoJob | Reject] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= self.batch_size:
                yield from self._filter_enrolled(chunk)
                chunk = []
        yield from self._filter_enrolled(chunk)

    def _filter_enrolled(self, chunk: list[PhotoJob | Reject]) -> Iterator[Item]:
        keys = {(i.identity.license_number, i.sha256) for i in chunk if isinstance(i, PhotoJob)}
        done: set[tuple[str, str]] = set()
        if keys:
            with self.sessions() as session:
                done = {
                    (row[0], row[1])
                    for row in session.execute(
                        select(LicenseRecord.license_number, Photo.sha256)
                        .join(Photo)
                        .join(Template)
                        .where(Template.model_id == self.model_id)
                        .where(tuple_(LicenseRecord.license_number, Photo.sha256).in_(keys))
                    )
                }
        seen: set[tuple[str, str]] = set()
        for item in chunk:
            if isinstance(item, PhotoJob):
                key = (item.identity.license_number, item.sha256)
                if key in done or key in seen:
                    yield AlreadyEnrolled(item.row)
                    continue
                seen.add(key)
            yield item

    @staticmethod
    def _encoded(
        pool: EncoderPool, items: Iterable[Item]
    ) -> Iterator[tuple[Item, Encoding | None]]:
        """Items in order with their encoding, keeping a bounded number of photos in flight."""
        window = pool.workers * 8
        pending: deque[tuple[Item, Future[Encoding] | None]] = deque()
        for item in items:
            future = pool.submit(str(item.path)) if isinstance(item, PhotoJob) else None
            pending.append((item, future))
            while len(pending) > window or (pending and pending[0][1] is None):
                yield _settled(pending.popleft())
        while pending:
            yield _settled(pending.popleft())

    def _write(self, batch: list[tuple[PhotoJob, bytes]]) -> int:
        """One transaction: records (created or brought up to date), photos, templates, and
        the person templates of the records it touches."""
        with self.sessions.begin() as session:
            numbers = {job.identity.license_number for job, _ in batch}
            records = {
                r.license_number: r
                for r in session.scalars(
                    select(LicenseRecord).where(LicenseRecord.license_number.in_(numbers))
                )
            }
            written = 0
            for job, descriptor in batch:
                fields = job.identity.model_dump()
                record = records.get(job.identity.license_number)
                if record is None:
                    record = records[job.identity.license_number] = LicenseRecord(**fields)
                    session.add(record)
                    session.flush()
                else:
                    for name, value in fields.items():
                        setattr(record, name, value)
                photo = session.scalar(
                    select(Photo).where(Photo.record_id == record.id, Photo.sha256 == job.sha256)
                )
                if photo is None:
                    photo = Photo(record_id=record.id, sha256=job.sha256, source_ref=job.source_ref)
                    session.add(photo)
                    session.flush()
                sealed = seal_template(self.keys, photo.id, self.model_id, descriptor)
                session.add(Template(photo_id=photo.id, model_id=self.model_id, descriptor=sealed))
                written += 1
            session.flush()
            people = {record.id for record in records.values()}
            fuse_people(session, self.keys, self.model_id, self.metric, people)
            bump_revision(session, self.model_id)
        return written


def _settled(entry: tuple[Item, Future[Encoding] | None]) -> tuple[Item, Encoding | None]:
    item, future = entry
    return item, (future.result() if future is not None else None)


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    """The rejects report: row, photo reference and reason code, nothing about the person."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "photo", "reason"])
        writer.writerows((r.row, r.photo, r.reason) for r in rejects)
    os.replace(tmp, path)


def purge_record(session: Session, license_number: str) -> int | None:
    """Delete a licence record with its photos, their templates and its person templates (the
    database's cascade), returning its id (None if there is no such record); the caller
    commits."""
    record = session.scalar(
        select(LicenseRecord).where(LicenseRecord.license_number == license_number.strip().upper())
    )
    if record is None:
        return None
    models = set(
        session.scalars(select(Template.model_id).join(Photo).where(Photo.record_id == record.id))
    )
    session.delete(record)
    for model_id in models:
        bump_revision(session, model_id)
    return record.id
