"""The gallery in the database: the revision counter, photo and person templates kept in
step, and templates sealed and opened at the database's edge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import numpy as np
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.gallery.models import GalleryRevision, PersonTemplate, Photo, Template
from index import Metric, SealingError, TemplateKeys, fuse
from matcher import GalleryTemplates

# Unique-constraint clashes fuse_unfused rides out before it takes one for another fault.
_CLASHES = 100


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


def _table(kind: GalleryTemplates) -> type[Template] | type[PersonTemplate]:
    return PersonTemplate if kind == "person" else Template


def template_ids(session: Session, model_id: str, kind: GalleryTemplates = "photo") -> set[int]:
    table = _table(kind)
    return set(session.scalars(select(table.id).where(table.model_id == model_id)))


def template_count(session: Session, model_id: str, kind: GalleryTemplates = "photo") -> int:
    table = _table(kind)
    return session.scalar(select(func.count(table.id)).where(table.model_id == model_id)) or 0


def people_enrolled(session: Session, model_id: str) -> int:
    """Licence records with at least one of the engine's templates: a search's N."""
    enrolled = select(func.count(func.distinct(Photo.record_id))).join(Template)
    return session.scalar(enrolled.where(Template.model_id == model_id)) or 0


def template_context(photo_id: int, model_id: str) -> str:
    """What a template's seal is bound to: its photo and model, so a template copied onto
    another person's row does not open there."""
    return f"template:{model_id}:{photo_id}"


def person_template_context(template_id: int, record_id: int, model_id: str) -> str:
    """A person template's seal is bound to its row, licence record and model: one restored
    from before a renewal, or onto a record whose id was reused, does not open."""
    return f"person-template:{model_id}:{record_id}:{template_id}"


@dataclass(frozen=True)
class SealedTemplate:
    """A template row with what opens it: the context its seal is bound to."""

    id: int
    context: str
    descriptor: bytes


def seal_template(keys: TemplateKeys, photo_id: int, model_id: str, descriptor: bytes) -> bytes:
    return keys.seal(descriptor, template_context(photo_id, model_id))


def templates_by_id(
    session: Session, ids: list[int], kind: GalleryTemplates = "photo"
) -> list[SealedTemplate]:
    """Sealed templates of either kind with what opens them."""
    if kind == "person":
        people = select(
            PersonTemplate.id,
            PersonTemplate.record_id,
            PersonTemplate.model_id,
            PersonTemplate.descriptor,
        ).where(PersonTemplate.id.in_(ids))
        return [
            SealedTemplate(
                row.id,
                person_template_context(row.id, row.record_id, row.model_id),
                row.descriptor,
            )
            for row in session.execute(people)
        ]
    photos = select(Template.id, Template.photo_id, Template.model_id, Template.descriptor).where(
        Template.id.in_(ids)
    )
    return [
        SealedTemplate(row.id, template_context(row.photo_id, row.model_id), row.descriptor)
        for row in session.execute(photos)
    ]


def template_vector(row: SealedTemplate, keys: TemplateKeys) -> np.ndarray:
    """A template's descriptor, opened; SealingError, naming the template, if it was
    changed, moved to another row, or sealed under a key not configured."""
    try:
        opened = keys.open(row.descriptor, row.context)
    except SealingError as problem:
        raise SealingError(f"template {row.id} cannot be opened: {problem}") from None
    return np.frombuffer(opened, dtype=np.float32)


def fuse_people(
    session: Session,
    keys: TemplateKeys,
    model_id: str,
    metric: Metric,
    record_ids: set[int],
    replace: bool = True,
) -> None:
    """Make each record's person template again from its photo templates, in the caller's
    transaction (which also bumps the revision): the old row goes, a new one with a new id
    comes, and a record with no photo template of the model is left with none. Without
    `replace`, only missing ones are made: one that exists meanwhile fails the transaction
    on the unique constraint rather than being replaced."""
    if not record_ids:
        return
    if replace:
        session.execute(
            delete(PersonTemplate).where(
                PersonTemplate.model_id == model_id, PersonTemplate.record_id.in_(record_ids)
            )
        )
    rows = session.execute(
        select(Photo.record_id, Template.id, Template.photo_id, Template.descriptor)
        .join(Photo)
        .where(Template.model_id == model_id, Photo.record_id.in_(record_ids))
        .order_by(Photo.record_id, Template.id)
    )
    vectors: dict[int, list[np.ndarray]] = {}
    for row in rows:
        sealed = SealedTemplate(row.id, template_context(row.photo_id, model_id), row.descriptor)
        vectors.setdefault(row.record_id, []).append(template_vector(sealed, keys))
    made = {
        record_id: PersonTemplate(
            record_id=record_id, model_id=model_id, descriptor=b"", photos=len(own)
        )
        for record_id, own in vectors.items()
    }
    session.add_all(made.values())
    session.flush()  # the ids the seals are bound to
    for record_id, person in made.items():
        fused = fuse(np.stack(vectors[record_id]), metric).tobytes()
        context = person_template_context(person.id, record_id, model_id)
        person.descriptor = keys.seal(fused, context)
    session.flush()


def fuse_unfused(
    sessions: sessionmaker[Session],
    keys: TemplateKeys,
    model_id: str,
    metric: Metric,
    chunk: int = 1000,
) -> int:
    """Make the person templates that records enrolled before they existed lack (migration
    0009), a chunk of records per transaction; returns how many this call made. Another
    back-fill or an enrolment making one of the same people's at the same moment fails one
    transaction on the unique constraint, and what is still missing is looked for again:
    each clash means someone else made progress, so the loop ends."""
    made, clashes = 0, 0
    while True:
        try:
            with sessions.begin() as session:
                records = set(session.scalars(_unfused(model_id).limit(chunk)))
                if records:
                    fuse_people(session, keys, model_id, metric, records, replace=False)
                    bump_revision(session, model_id)
        except IntegrityError:
            clashes += 1
            if clashes > _CLASHES:
                raise
            continue
        if not records:
            return made
        made += len(records)


def _unfused(model_id: str) -> Select[int]:
    """Records with a photo template of the model and no person template of it."""
    fused = select(PersonTemplate.id).where(
        PersonTemplate.record_id == Photo.record_id, PersonTemplate.model_id == model_id
    )
    return (
        select(Photo.record_id)
        .join(Template)
        .where(Template.model_id == model_id, ~fused.exists())
        .distinct()
    )


def reseal_templates(sessions: sessionmaker[Session], keys: TemplateKeys, chunk: int) -> int:
    """Re-seal every template, of photos and of people, not sealed under the current key, a
    chunk per transaction (so a rotation stopped part-way resumes); returns how many were
    re-sealed. The templates' content does not change, so neither does the gallery's
    revision."""
    return sum(_reseal(sessions, keys, chunk, kind) for kind in get_args(GalleryTemplates))


def _reseal(
    sessions: sessionmaker[Session], keys: TemplateKeys, chunk: int, kind: GalleryTemplates
) -> int:
    table = _table(kind)
    after, resealed = 0, 0
    while True:
        with sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(table.id).where(table.id > after).order_by(table.id).limit(chunk)
                )
            )
            for row in templates_by_id(session, ids, kind):
                if not keys.is_current(row.descriptor):
                    vector = template_vector(row, keys).tobytes()
                    sealed = keys.seal(vector, row.context)
                    session.execute(
                        update(table).where(table.id == row.id).values(descriptor=sealed)
                    )
                    resealed += 1
        if len(ids) < chunk:
            return resealed
        after = ids[-1]


def owners_of_templates(
    session: Session, ids: list[int], kind: GalleryTemplates = "photo"
) -> dict[int, tuple[int, int]]:
    """Each template's licence record and the photo to show first, by template id: for a
    photo template its own photo, for a person template the person's latest enrolled photo
    (the newest licence photo; the examiner sees all of them)."""
    if kind == "person":
        people = session.execute(
            select(PersonTemplate.id, PersonTemplate.record_id, PersonTemplate.model_id).where(
                PersonTemplate.id.in_(ids)
            )
        ).all()
        records = {row.record_id for row in people}
        models = {row.model_id for row in people}
        latest = {
            row.record_id: row.photo_id
            for row in session.execute(
                select(Photo.record_id, func.max(Photo.id).label("photo_id"))
                .join(Template)
                .where(Template.model_id.in_(models), Photo.record_id.in_(records))
                .group_by(Photo.record_id)
            )
        }
        return {
            row.id: (row.record_id, latest[row.record_id])
            for row in people
            if row.record_id in latest
        }
    rows = session.execute(
        select(Template.id, Photo.record_id, Photo.id.label("photo_id"))
        .join(Photo)
        .where(Template.id.in_(ids))
    )
    return {row.id: (row.record_id, row.photo_id) for row in rows}
