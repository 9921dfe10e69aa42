"""Distributed enrolment on a real Dask cluster of two worker processes: the same templates and
rejects as enrolment on one machine, and a run killed part-way resumes from its shards."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import Result

from app.core.composition import encoder, gallery_spec, template_keys
from app.core.database import make_engine, migrate, session_factory
from app.core.settings import Settings
from app.enrolment.local import Enrolment, read_manifest
from app.gallery.models import LicenseRecord, Photo, Template
from app.gallery.service import sync_index
from app.gallery.store import template_vector, templates_by_id
from index import TemplateKeys
from tests.support.commands import invoke
from tests.support.data import DATASETS, lfw_rows, write_manifest
from tests.support.gallery import counts, searched_ids
from tests.support.keys import TEST_KEY, TEST_TEMPLATE_KEY

KEYS = TemplateKeys.from_text(TEST_TEMPLATE_KEY)
FACEMATCH = str(Path(sys.executable).with_name("facematch"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A cluster of two worker processes, reached by its address like a real one."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as local:
        yield local


def enrolled(sessions: sessionmaker[Session]) -> set[tuple[str, str, bytes]]:
    """Each template, opened, with the licence and photo it belongs to."""
    with sessions() as session:
        rows = session.execute(
            select(LicenseRecord.license_number, Photo.sha256, Template.id)
            .join(Photo, Photo.record_id == LicenseRecord.id)
            .join(Template, Template.photo_id == Photo.id)
        ).all()
        opened = {
            row.id: template_vector(row, KEYS).tobytes()
            for row in templates_by_id(session, [row.id for row in rows])
        }
        return {(number, sha256, opened[template]) for number, sha256, template in rows}


def enrol_on_cluster(settings: Settings, manifest: Path, *options: str) -> Result:
    return invoke(
        settings, "enroll", str(manifest), "--images", str(DATASETS), "--face", "central", *options
    )


def on_sqlite(tmp_path: Path) -> Settings:
    """Settings of a SQLite database of the test's own: these tests are about the cluster and
    the shards, which the database backend does not touch."""
    return Settings(
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'facematch.db'}",
        jwt_key=TEST_KEY,
        template_key=TEST_TEMPLATE_KEY,
    )


def test_enrolment_on_a_cluster_matches_enrolment_on_one_machine(
    cluster: LocalCluster, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    rows = lfw_rows(12)
    bad = [
        {**rows[0], "license_number": "WDLBADDATE01", "date_of_birth": "1850-13-45"},
        {**rows[0], "license_number": "WDLMISSING01", "photo": "samples/nobody.jpg"},
        {**rows[0], "license_number": "WDLESCAPE001", "photo": "../../etc/passwd"},
        {**rows[0], "license_number": "WDLCUTOFF001", "photo": "samples/obama_partial_face.jpg"},
    ]
    manifest = write_manifest(tmp_path / "manifest.csv", rows[:6] + bad + rows[6:])
    shards, rejects = tmp_path / "shards", tmp_path / "rejects.csv"
    options = ("--cluster", cluster.scheduler_address, "--shard-rows", "5", "--shards", str(shards))

    result = enrol_on_cluster(settings, manifest, *options, "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert "16 rows: 12 photos enrolled, 0 already enrolled, 4 rejected" in result.output
    assert "4 shards encoded, 0 reused" in result.output
    assert not shards.exists(), "the shards are deleted once loaded"

    # The same manifest enrolled on this machine alone, into a database of its own.
    engine = make_engine(f"sqlite:///{tmp_path / 'alone.db'}")
    migrate(engine)
    alone = session_factory(engine)
    report = Enrolment(alone, encoder(settings, "central"), template_keys(settings), workers=1).run(
        read_manifest(manifest, DATASETS)
    )
    assert enrolled(sessions) == enrolled(alone) and len(enrolled(alone)) == 12
    with open(rejects, newline="") as handle:
        written = [(int(r["row"]), r["photo"], r["reason"]) for r in csv.DictReader(handle)]
    assert written == [(r.row, r.photo, r.reason) for r in report.rejects]
    assert {reason for *_, reason in written} == {
        "invalid_record",
        "photo_not_found",
        "photo_outside_images",
        "face_cut_off",
    }

    index = sync_index(sessions, gallery_spec(settings))
    assert set(index.ids().tolist()) == searched_ids(sessions, settings)

    again = enrol_on_cluster(settings, manifest, *options)
    assert "16 rows: 0 photos enrolled, 12 already enrolled, 4 rejected" in again.output
    assert counts(sessions) == (12, 12, 12)


def test_a_killed_run_resumes_from_the_shards_it_wrote(tmp_path: Path) -> None:
    settings = on_sqlite(tmp_path)
    manifest = write_manifest(tmp_path / "manifest.csv", lfw_rows(60))
    shards = tmp_path / "shards"
    options = ("--cluster", "local", "--workers", "2", "--shard-rows", "2", "--shards", str(shards))
    environment = {
        **os.environ,
        "FACEMATCH_DATA_DIR": str(settings.data_dir),
        "FACEMATCH_DATABASE_URL": settings.sqlalchemy_url,
        "FACEMATCH_TEMPLATE_KEY": TEST_TEMPLATE_KEY,
    }
    command = [FACEMATCH, "enroll", str(manifest), "--images", str(DATASETS), "--face", "central"]
    run = subprocess.Popen(
        [*command, *options],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(shards.glob("shard-*.parquet"))) < 3 and run.poll() is None:
            assert time.monotonic() < deadline, "no shard was written in two minutes"
            time.sleep(0.02)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the command and its cluster's workers
        run.wait()
    written = len(list(shards.glob("shard-*.parquet")))
    assert 3 <= written < 30, "the run was to be killed part-way"
    # The shards hold templates sealed as the database does, bound to their row and photo.
    shard = pq.read_table(next(shards.glob("shard-*.parquet"))).to_pylist()
    for row in (row for row in shard if row["descriptor"] is not None):
        opened = KEYS.open(row["descriptor"], f"shard:{row['row']}:{row['sha256']}")
        assert len(opened) == 4 * settings.engine_spec.dimension
        assert opened not in row["descriptor"]

    other = enrol_on_cluster(settings, manifest, *options[:-3], "3", *options[-2:])
    assert other.exit_code == 2 and "holds shards of another manifest" in other.output

    resumed = enrol_on_cluster(settings, manifest, *options)
    assert resumed.exit_code == 0, resumed.output
    assert f"{30 - written} shards encoded, {written} reused" in resumed.output
    assert "60 rows: 60 photos enrolled, 0 already enrolled, 0 rejected" in resumed.output
    sessions = session_factory(make_engine(settings.sqlalchemy_url))
    assert counts(sessions) == (60, 60, 60)
    index = sync_index(sessions, gallery_spec(settings))
    assert set(index.ids().tolist()) == searched_ids(sessions, settings)


def test_a_cluster_that_does_not_answer_is_refused_clearly(tmp_path: Path) -> None:
    settings = on_sqlite(tmp_path)
    manifest = write_manifest(tmp_path / "manifest.csv", lfw_rows(2))
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        result = enrol_on_cluster(settings, manifest, "--cluster", "tcp://127.0.0.1:9")
    assert result.exit_code == 2
    assert "the Dask cluster at tcp://127.0.0.1:9 could not be reached" in result.output
