"""Person templates (what the index searches by default) kept in step with the photo
templates they fuse, on SQLite and PostgreSQL: enrolment, a renewal photo, purges, rebuilds
and databases from before they existed all leave one person template per enrolled licence
holder, equal to the fusion of their photo templates, and the index holding exactly those."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.api.main import create_app
from app.core.composition import StartupRefused, gallery_spec, template_keys
from app.core.settings import Settings
from app.enrolment.local import purge_record, read_manifest
from app.gallery import service as service_module
from app.gallery import store as store_module
from app.gallery.models import PersonTemplate, Photo, Template
from app.gallery.service import Gallery, sync_index
from app.gallery.store import (
    SealedTemplate,
    fuse_unfused,
    gallery_revision,
    person_template_context,
    template_context,
    template_vector,
)
from index import SealingError, fuse
from matcher import GalleryTemplates, Matcher, MatchRule, load_engine
from tests.support.data import DATASETS, lfw_rows, write_manifest
from tests.support.gallery import enrolment


def renewal(row: dict[str, str], number: int) -> dict[str, str]:
    """The same licence with the person's `number`th LFW photo."""
    return {**row, "photo": row["photo"].replace("_0001.jpg", f"_{number:04d}.jpg")}


def person_templates(sessions: sessionmaker[Session], settings: Settings) -> dict[int, tuple]:
    """Each record's person template: (id, photos fused, vector)."""
    keys = template_keys(settings)
    with sessions() as session:
        rows = session.scalars(select(PersonTemplate)).all()
        return {
            row.record_id: (
                row.id,
                row.photos,
                template_vector(
                    SealedTemplate(
                        row.id,
                        person_template_context(row.id, row.record_id, row.model_id),
                        row.descriptor,
                    ),
                    keys,
                ),
            )
            for row in rows
        }


def fused_photo_templates(
    sessions: sessionmaker[Session], settings: Settings
) -> dict[int, np.ndarray]:
    """Each record's photo templates, fused here from the rows themselves."""
    keys = template_keys(settings)
    with sessions() as session:
        rows = session.execute(
            select(
                Photo.record_id,
                Template.id,
                Template.photo_id,
                Template.model_id,
                Template.descriptor,
            )
            .join(Photo)
            .order_by(Template.id)
        ).all()
    own: dict[int, list[np.ndarray]] = {}
    for row in rows:
        sealed = SealedTemplate(
            row.id, template_context(row.photo_id, row.model_id), row.descriptor
        )
        own.setdefault(row.record_id, []).append(template_vector(sealed, keys))
    return {
        record: fuse(np.stack(vectors), settings.engine_spec.metric)
        for record, vectors in own.items()
    }


def assert_in_step(sessions: sessionmaker[Session], settings: Settings) -> dict[int, tuple]:
    """One person template per record with photo templates, each their fusion, and the
    index holding exactly their ids at the database's revision."""
    people = person_templates(sessions, settings)
    expected = fused_photo_templates(sessions, settings)
    assert people.keys() == expected.keys()
    for record, (_, _, vector) in people.items():
        np.testing.assert_allclose(vector, expected[record], atol=1e-6)
    index = sync_index(sessions, gallery_spec(settings))
    assert sorted(index.ids().tolist()) == sorted(i for i, _, _ in people.values())
    with sessions() as session:
        assert index.revision == gallery_revision(session, settings.engine_spec.model_id)
    return people


def test_enrolment_renewal_and_purge_keep_one_fused_template_per_person(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    rows = lfw_rows(3)
    first = [rows[0], renewal(rows[0], 2), rows[1], rows[2]]
    enrolment(sessions, settings).run(
        read_manifest(write_manifest(tmp_path / "a.csv", first), DATASETS)
    )
    before = assert_in_step(sessions, settings)
    assert sorted(photos for _, photos, _ in before.values()) == [1, 1, 2]

    # A renewal photo of the first person, in a later run: their person template is made
    # again under a new id; the others are left as they were.
    later = [renewal(rows[0], 3)]
    enrolment(sessions, settings).run(
        read_manifest(write_manifest(tmp_path / "b.csv", later), DATASETS)
    )
    after = assert_in_step(sessions, settings)
    renewed = next(r for r, (_, photos, _) in after.items() if photos == 3)
    assert after[renewed][0] != before[renewed][0]
    assert {r: v[0] for r, v in after.items() if r != renewed} == {
        r: v[0] for r, v in before.items() if r != renewed
    }

    # The renewed person is found at their person template from a photo not enrolled.
    gallery = Gallery(sessions, gallery_spec(settings))
    matcher_probe = DATASETS / rows[0]["photo"].replace("_0001.jpg", "_0004.jpg")
    matcher = Matcher(load_engine(settings.engine), policy=settings.engine_spec.quality)
    descriptor = matcher.encode(matcher_probe.read_bytes(), choice="central").descriptor
    with sessions() as session:
        hits = gallery.search(session, descriptor, MatchRule(threshold=2.0, limit=5))
        assert hits.matches[0].record.license_number == rows[0]["license_number"]
        latest = session.scalar(
            select(Photo.id).where(Photo.record_id == renewed).order_by(Photo.id.desc())
        )
        assert hits.matches[0].photo_id == latest

    # A purge takes the person template with the record, and the index drops it.
    with sessions.begin() as session:
        assert purge_record(session, rows[0]["license_number"]) == renewed
    remaining = assert_in_step(sessions, settings)
    assert renewed not in remaining and len(remaining) == 2


def test_a_database_from_before_person_templates_gets_them_at_the_next_sync(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    rows = lfw_rows(3)
    manifest = write_manifest(tmp_path / "a.csv", [rows[0], renewal(rows[0], 2), *rows[1:]])
    enrolment(sessions, settings).run(read_manifest(manifest, DATASETS))
    with sessions.begin() as session:
        session.execute(delete(PersonTemplate))
    with sessions() as session:
        revision = gallery_revision(session, settings.engine_spec.model_id)
    rebuilt = sync_index(sessions, gallery_spec(settings), gallery_spec(settings).empty_index())
    assert rebuilt.count == 3 and rebuilt.revision > revision
    assert_in_step(sessions, settings)


def test_each_kind_of_template_keeps_an_index_of_its_own(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    rows = lfw_rows(2)
    manifest = write_manifest(tmp_path / "a.csv", [rows[0], renewal(rows[0], 2), rows[1]])
    enrolment(sessions, settings).run(read_manifest(manifest, DATASETS))
    photo = settings.model_copy(update={"gallery_templates": "photo"})
    person = settings.model_copy(update={"gallery_templates": "person"})
    by_photo = sync_index(sessions, gallery_spec(photo))
    by_person = sync_index(sessions, gallery_spec(person))
    with sessions() as session:
        assert set(by_photo.ids().tolist()) == set(session.scalars(select(Template.id)))
        assert set(by_person.ids().tolist()) == set(session.scalars(select(PersonTemplate.id)))
    assert gallery_spec(photo).saved_index().count == 3
    assert gallery_spec(person).saved_index().count == 2

    # The operating point must be for the kind searched: the shipped one is for people.
    with pytest.raises(StartupRefused, match="calibrated for person templates"):
        create_app(photo)


def test_a_person_template_moved_to_another_record_does_not_open(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    rows = lfw_rows(2)
    enrolment(sessions, settings).run(
        read_manifest(write_manifest(tmp_path / "a.csv", rows), DATASETS)
    )
    people = person_templates(sessions, settings)
    (_, (first, _, _)), (_, (second, _, _)) = sorted(people.items())
    with sessions.begin() as session:
        copied = session.get_one(PersonTemplate, first).descriptor
        session.execute(
            update(PersonTemplate).where(PersonTemplate.id == second).values(descriptor=copied)
        )
    with pytest.raises(SealingError, match=f"template {second} cannot be opened"):
        sync_index(sessions, gallery_spec(settings), gallery_spec(settings).empty_index())


def test_a_renewal_between_the_index_and_the_records_does_not_drop_the_person(
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The person template the index found is replaced (a renewal committed just after the
    index answered): the search looks again instead of leaving the person out."""
    rows = lfw_rows(2)
    enrolment(sessions, settings).run(
        read_manifest(write_manifest(tmp_path / "a.csv", rows), DATASETS)
    )
    gallery = Gallery(sessions, gallery_spec(settings))
    gallery.current()
    renewed = write_manifest(tmp_path / "b.csv", [renewal(rows[0], 2)])
    real = store_module.owners_of_templates
    calls: list[list[int]] = []

    def renewal_first(session: Session, ids: list[int], kind: GalleryTemplates) -> dict:
        if not calls:
            enrolment(sessions, settings).run(read_manifest(renewed, DATASETS))
        calls.append(ids)
        return real(session, ids, kind)

    monkeypatch.setattr(service_module, "owners_of_templates", renewal_first)
    matcher = Matcher(load_engine(settings.engine), policy=settings.engine_spec.quality)
    probe = DATASETS / rows[0]["photo"].replace("_0001.jpg", "_0003.jpg")
    descriptor = matcher.encode(probe.read_bytes(), choice="central").descriptor
    with sessions() as session:
        hits = gallery.search(session, descriptor, MatchRule(threshold=2.0, limit=5))
    assert len(calls) == 2  # looked again at the caught-up index
    assert hits.matches[0].record.license_number == rows[0]["license_number"]


def test_ten_back_fills_at_once_leave_one_person_template_each(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    """Ten processes starting on a database from before person templates each fill them in
    at once: on PostgreSQL they clash on the unique constraint and look again; on SQLite
    they take turns. Each record ends with exactly one, its photos' fusion."""
    rows = lfw_rows(4)
    manifest = write_manifest(tmp_path / "a.csv", [rows[0], renewal(rows[0], 2), *rows[1:]])
    enrolment(sessions, settings).run(read_manifest(manifest, DATASETS))
    with sessions.begin() as session:
        session.execute(delete(PersonTemplate))
    keys, spec = template_keys(settings), settings.engine_spec
    start = threading.Barrier(10)

    def back_fill() -> int:
        start.wait()
        return fuse_unfused(sessions, keys, spec.model_id, spec.metric, chunk=1)

    with ThreadPoolExecutor(10) as pool:
        made = list(pool.map(lambda _: back_fill(), range(10)))
    assert sum(made) == 4
    assert_in_step(sessions, settings)
