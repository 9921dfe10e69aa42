"""The gallery written for a test: enrolment as the service runs it, made-up licences with
random templates, and how many records, photos and templates the database holds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.composition import encoder, gallery_spec, template_keys
from app.core.settings import Settings
from app.enrolment.local import Enrolment
from app.gallery.models import LicenseRecord, Photo, Template
from app.gallery.service import GallerySpec
from app.gallery.store import bump_revision, seal_template, template_ids
from matcher import FaceChoice


def enrolment(
    sessions: sessionmaker[Session],
    settings: Settings,
    batch_size: int = 8,
    choice: FaceChoice = "central",
) -> Enrolment:
    """Enrolment with two encoding workers, as `facematch enroll` runs it."""
    return Enrolment(
        sessions,
        encoder(settings, choice),
        template_keys(settings),
        workers=2,
        batch_size=batch_size,
    )


def synthetic_gallery(
    sessions: sessionmaker[Session], spec: GallerySpec, people: int
) -> np.ndarray:
    """`people` made-up licences (WDL000000000 on), each with one random unit-length
    template, sealed as enrolment seals them; their descriptors."""
    rng = np.random.default_rng(0)
    descriptors = rng.normal(size=(people, spec.dimension)).astype(np.float32)
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    with sessions.begin() as session:
        for n, descriptor in enumerate(descriptors):
            record = LicenseRecord(
                license_number=f"WDL{n:09d}",
                first_name="Test",
                last_name=f"Person{n}",
                date_of_birth=date(1980, 1, 1),
            )
            photo = Photo(record=record, sha256=f"{n:064x}", source_ref=f"synthetic/{n}.jpg")
            session.add(photo)
            session.flush()
            sealed = seal_template(spec.keys, photo.id, spec.model_id, descriptor.tobytes())
            session.add(Template(photo=photo, model_id=spec.model_id, descriptor=sealed))
        bump_revision(session, spec.model_id)
    return descriptors


def searched_ids(sessions: sessionmaker[Session], settings: Settings) -> set[int]:
    """The ids of the templates the configured gallery searches: person or photo ones."""
    with sessions() as session:
        return template_ids(session, settings.engine_spec.model_id, settings.gallery_templates)


def index_file(settings: Settings) -> Path:
    """The configured gallery's saved index file."""
    return settings.index_dir / f"{gallery_spec(settings).index_name}.faiss"


def counts(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    """How many licence records, photos and templates there are."""
    with sessions() as session:
        records, photos, templates = (
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (LicenseRecord, Photo, Template)
        )
    return records, photos, templates
