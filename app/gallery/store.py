"""The gallery in the database: the revision counter, and templates sealed and opened at the
database's edge."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from app.gallery.models import GalleryRevision, Photo, Template
from index import SealingError, TemplateKeys


def bump_revision(session: Session, model_id: str) -> None:
    """Count one more change to a model's templates, in the caller's transaction."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(GalleryRevision).values(model_id=model_id, revision=1)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[GalleryRevision.model_id],
            set_={"revision": GalleryRevision.revision + 1},
        )
    )


def gallery_revision(session: Session, model_id: str) -> int:
    revision = session.scalar(
        select(GalleryRevision.revision).where(GalleryRevision.model_id == model_id)
    )
    return revision or 0


def template_ids(session: Session, model_id: str) -> set[int]:
    return set(session.scalars(select(Template.id).where(Template.model_id == model_id)))


def template_count(session: Session, model_id: str) -> int:
    return session.scalar(select(func.count(Template.id)).where(Template.model_id == model_id)) or 0


def people_enrolled(session: Session, model_id: str) -> int:
    """Licence records with at least one of the engine's templates: a search's N."""
    enrolled = select(func.count(func.distinct(Photo.record_id))).join(Template)
    return session.scalar(enrolled.where(Template.model_id == model_id)) or 0


def template_context(photo_id: int, model_id: str) -> str:
    """What a template's seal is bound to: its photo and model, so a template copied onto
    another person's row does not open there."""
    return f"template:{model_id}:{photo_id}"


# A template row with what opens it: id, photo id, model id, sealed descriptor.
TemplateRow = Row[int, int, str, bytes]


def seal_template(keys: TemplateKeys, photo_id: int, model_id: str, descriptor: bytes) -> bytes:
    return keys.seal(descriptor, template_context(photo_id, model_id))


def templates_by_id(session: Session, ids: list[int]) -> Sequence[TemplateRow]:
    """Sealed templates with what opens them: id, photo id, model id, descriptor."""
    return session.execute(
        select(Template.id, Template.photo_id, Template.model_id, Template.descriptor).where(
            Template.id.in_(ids)
        )
    ).all()


def template_vector(row: TemplateRow, keys: TemplateKeys) -> np.ndarray:
    """A template row's descriptor, opened; SealingError, naming the template, if it was
    changed, moved to another row, or sealed under a key not configured."""
    try:
        opened = keys.open(row.descriptor, template_context(row.photo_id, row.model_id))
    except SealingError as problem:
        raise SealingError(f"template {row.id} cannot be opened: {problem}") from None
    return np.frombuffer(opened, dtype=np.float32)


def reseal_templates(sessions: sessionmaker[Session], keys: TemplateKeys, chunk: int) -> int:
    """Re-seal every template not sealed under the current key, a chunk per transaction (so
    a rotation stopped part-way resumes); returns how many were re-sealed. The templates'
    content does not change, so neither does the gallery's revision."""
    after, resealed = 0, 0
    while True:
        with sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(Template.id)
                    .where(Template.id > after)
                    .order_by(Template.id)
                    .limit(chunk)
                )
            )
            for row in templates_by_id(session, ids):
                if not keys.is_current(row.descriptor):
                    vector = template_vector(row, keys).tobytes()
                    sealed = seal_template(keys, row.photo_id, row.model_id, vector)
                    session.execute(
                        update(Template).where(Template.id == row.id).values(descriptor=sealed)
                    )
                    resealed += 1
        if len(ids) < chunk:
            return resealed
        after = ids[-1]


def owners_of_templates(session: Session, ids: list[int]) -> dict[int, tuple[int, int]]:
    """Each template's licence record and photo, by template id."""
    rows = session.execute(
        select(Template.id, Photo.record_id, Photo.id.label("photo_id"))
        .join(Photo)
        .where(Template.id.in_(ids))
    )
    return {row.id: (row.record_id, row.photo_id) for row in rows}
