"""Enrolment on real photos, against SQLite and PostgreSQL: only the five fields are kept,
rejects are reported by code, and re-running or resuming never loses or doubles anything."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.composition import gallery_spec
from app.core.settings import Settings
from app.enrolment.local import PhotoJob, Reject, purge_record, read_manifest, write_rejects
from app.gallery.models import LicenseRecord
from app.gallery.service import GallerySpec, sync_index
from index import EXACT
from tests.support.data import DATASETS, SENTINELS, lfw_rows, write_manifest
from tests.support.gallery import counts, enrolment, index_file, searched_ids, synthetic_gallery


def spec(settings: Settings) -> GallerySpec:
    return gallery_spec(settings)


def test_only_the_five_fields_are_kept_and_rejects_are_coded(
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    rows = [
        {**row, "photo": f"samples/{photo}"}
        for row, photo in zip(
            lfw_rows(4),
            ["obama.jpg", "biden.jpg", "alex-lacamoire.png", "obama_small.jpg"],
            strict=True,
        )
    ]
    bad = [
        {**rows[0], "license_number": "WDLTWOFACES1", "photo": "samples/two_people.jpg"},
        {**rows[0], "license_number": "WDLCUTOFF001", "photo": "samples/obama_partial_face.jpg"},
        {**rows[0], "license_number": "WDLMISSING01", "photo": "samples/nobody.jpg"},
        {**rows[0], "license_number": "WDLESCAPE001", "photo": "../../etc/passwd"},
        {**rows[0], "license_number": "WDLBADDATE01", "date_of_birth": "1850-13-45"},
        {**rows[0], "license_number": "", "photo": "samples/obama.jpg"},
    ]
    manifest = write_manifest(tmp_path / "manifest.csv", rows + bad)
    report = enrolment(sessions, settings, choice="only").run(read_manifest(manifest, DATASETS))
    rejects_file = tmp_path / "rejects.csv"
    write_rejects(rejects_file, report.rejects)
    sync_index(sessions, spec(settings))

    assert report.enrolled == 4 and report.rows == 10
    assert [(r.row, r.reason) for r in report.rejects] == [
        (6, "multiple_faces"),
        (7, "face_cut_off"),
        (8, "photo_not_found"),
        (9, "photo_outside_images"),
        (10, "invalid_record"),
        (11, "invalid_record"),
    ]
    with sessions() as session:
        stored = session.scalar(
            select(LicenseRecord).where(LicenseRecord.license_number == rows[1]["license_number"])
        )
        assert stored is not None
        assert (stored.first_name, stored.last_name, str(stored.date_of_birth)) == (
            rows[1]["first_name"],
            rows[1]["last_name"],
            rows[1]["date_of_birth"],
        )

    everything_written = [rejects_file.read_text(), caplog.text, *capfd.readouterr()]
    everything_written += [p.read_bytes().decode("latin-1") for p in settings.index_dir.iterdir()]
    with sessions() as session:
        metadata = MetaData()
        metadata.reflect(session.get_bind())
        for table in metadata.sorted_tables:
            everything_written += [repr(tuple(row)) for row in session.execute(table.select())]
    for secret in SENTINELS.values():
        assert not any(secret in text for text in everything_written), secret


def test_rerun_is_idempotent_and_an_interrupted_run_resumes(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    rows = lfw_rows(40)
    manifest = write_manifest(tmp_path / "manifest.csv", rows)

    def stopping_after(n: int) -> Iterator[PhotoJob | Reject]:
        yield from itertools.islice(read_manifest(manifest, DATASETS), n)
        raise KeyboardInterrupt  # the operator pressed Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        enrolment(sessions, settings, batch_size=4).run(stopping_after(30))
    records, photos, templates = counts(sessions)
    assert 0 < templates < 40 and records == photos == templates

    first = enrolment(sessions, settings).run(read_manifest(manifest, DATASETS))
    assert first.already_enrolled == templates and first.enrolled == 40 - templates
    again = enrolment(sessions, settings).run(read_manifest(manifest, DATASETS))
    assert (again.enrolled, again.already_enrolled, again.rejects) == (0, 40, [])
    assert counts(sessions) == (40, 40, 40)

    index = sync_index(sessions, spec(settings))
    assert set(index.ids().tolist()) == searched_ids(sessions, settings)


def test_a_second_photo_of_the_same_licence_is_added_not_doubled(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    row = lfw_rows(1)[0]
    renewal = {**row, "photo": row["photo"].replace("_0001.jpg", "_0002.jpg")}
    manifest = write_manifest(tmp_path / "manifest.csv", [row, renewal, row])
    report = enrolment(sessions, settings).run(read_manifest(manifest, DATASETS))
    assert (report.enrolled, report.already_enrolled) == (2, 1)
    assert counts(sessions) == (1, 2, 2)


def test_purge_removes_record_photos_templates_and_index_entries(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    rows = lfw_rows(3)
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    enrolment(sessions, settings).run(read_manifest(manifest, DATASETS))
    before = sync_index(sessions, spec(settings))
    assert before.count == 3

    with sessions.begin() as session:
        assert purge_record(session, rows[0]["license_number"].lower())
    with sessions.begin() as session:
        assert not purge_record(session, rows[0]["license_number"])
    assert counts(sessions) == (2, 2, 2)
    after = sync_index(sessions, spec(settings))
    assert after.count == 2 and after.revision > before.revision
    assert gallery_spec(settings).saved_index().count == 2


def test_stale_damaged_or_missing_index_is_brought_back_in_step(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    rows = lfw_rows(4)
    enrolment(sessions, settings).run(
        read_manifest(write_manifest(tmp_path / "a.csv", rows[:2]), DATASETS)
    )
    sync_index(sessions, spec(settings))
    enrolment(sessions, settings).run(
        read_manifest(write_manifest(tmp_path / "b.csv", rows[2:]), DATASETS)
    )
    assert gallery_spec(settings).saved_index().count == 2  # stale on disk
    assert sync_index(sessions, spec(settings)).count == 4

    saved = index_file(settings)
    saved.write_bytes(saved.read_bytes()[:-10])
    assert sync_index(sessions, spec(settings)).count == 4
    saved.unlink()
    rebuilt = sync_index(sessions, spec(settings))
    assert set(rebuilt.ids().tolist()) == searched_ids(sessions, settings)


def test_index_layout_follows_the_gallery_size(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Past `index_exact_below` templates the index becomes a shortlist, recorded in its
    manifest; brought back under it (or with the setting raised), exact again."""
    spec = gallery_spec(settings.model_copy(update={"index_exact_below": 1000}))
    descriptors = synthetic_gallery(sessions, spec, 1001)

    index = sync_index(sessions, spec)
    assert index.count == 1001 and index.layout.kind == "shortlist"
    assert spec.saved_index().layout == index.layout
    assert index.search(descriptors[500], 1)[0][1] == pytest.approx(0.0, abs=1e-5)

    with sessions.begin() as session:
        purge_record(session, "WDL000000500")
        purge_record(session, "WDL000000501")
    index = sync_index(sessions, spec)
    assert index.count == 999 and index.layout == EXACT
    assert spec.saved_index().layout == EXACT
