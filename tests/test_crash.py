"""Crash consistency: enrolment, index saves and purges killed with SIGKILL at random points.

After every kill the database holds whole batches only (nothing committed lost, nothing
doubled), and the index the service would serve from agrees with the database; the run
started again finishes the job.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.composition import gallery_spec
from app.core.settings import Settings
from app.gallery.models import LicenseRecord, Photo, Template
from app.gallery.service import Gallery
from tests.support.commands import FACEMATCH, enrol_demo_args, facematch, service_environment
from tests.support.data import LFW
from tests.support.gallery import searched_ids, synthetic_gallery

KILLS = 20
# Enough photos that every kill lands while the run is still enrolling.
PEOPLE = 250


def kill_at_random(
    process: subprocess.Popen, rng: random.Random, latest: float, started: Callable[[], bool]
) -> bool:
    """SIGKILL the process's whole group at a random moment up to `latest` seconds after
    `started()` first holds (or at once if it has ended); whether it was still running."""
    deadline = time.monotonic() + 120
    while not started() and process.poll() is None:
        assert time.monotonic() < deadline, "the process did nothing for two minutes"
        time.sleep(0.02)
    try:
        process.wait(timeout=rng.uniform(0, latest))
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def start(command: list[str], environment: dict[str, str]) -> subprocess.Popen:
    """The command in a process group of its own (its encoding workers go with it)."""
    return subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def enrolled(sessions: sessionmaker[Session], model_id: str) -> set[tuple[str, str]]:
    """(licence number, photo SHA-256) of every photo, checking each has its template and
    none is doubled; one statement, so one snapshot while a run commits beside it."""
    with sessions() as session:
        rows = session.execute(
            select(LicenseRecord.license_number, Photo.sha256, Template.id)
            .join(Photo, Photo.record_id == LicenseRecord.id)
            .outerjoin(Template, and_(Template.photo_id == Photo.id, Template.model_id == model_id))
        ).all()
    photos = [(number, sha256) for number, sha256, _ in rows]
    assert all(template is not None for *_, template in rows), "a photo without its template"
    assert len(photos) == len(set(photos)), "a photo doubled"
    return set(photos)


def served_agrees(sessions: sessionmaker[Session], settings: Settings) -> None:
    """A service starting now, from whatever the kill left on disk, serves the database's
    templates exactly."""
    index = Gallery(sessions, gallery_spec(settings)).current()
    assert set(index.ids().tolist()) == searched_ids(sessions, settings)


def test_enrolment_killed_twenty_times_loses_and_doubles_nothing(
    settings: Settings,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    report_figure: Callable[[str], None],
) -> None:
    environment = service_environment(settings, enroll_batch_size="2", enroll_workers="1")
    manifest = tmp_path / "demo.csv"
    facematch(environment, "demo-manifest", str(LFW), str(manifest), "--limit", str(PEOPLE))
    command = [*FACEMATCH, *enrol_demo_args(manifest, tmp_path / "rejects.csv")]
    rng, model_id = random.Random(7), settings.engine_spec.model_id
    before: set[tuple[str, str]] = set()
    progress = []
    for _ in range(KILLS):
        # Killed anywhere from its first commit on: mid-batch, between batches, in the
        # index's sync and save at the end.
        running = start(command, environment)
        grew = lambda: len(enrolled(sessions, model_id)) > len(before)  # noqa: E731
        assert kill_at_random(running, rng, 0.4, grew), "the run ended before it was killed"
        now = enrolled(sessions, model_id)
        assert now >= before, "a committed template was lost"
        served_agrees(sessions, settings)
        progress.append(len(now))
        before = now
    facematch(environment, *command[1:])
    final = enrolled(sessions, model_id)
    rejected = len((tmp_path / "rejects.csv").read_text().splitlines()) - 1
    assert final >= before and len({number for number, _ in final}) == PEOPLE - rejected
    served_agrees(sessions, settings)
    assert gallery_spec(settings).saved_index().count == PEOPLE - rejected
    report_figure(f"enrolment killed {KILLS} times: photos enrolled after each kill {progress}")


# Purges one record at a time, each followed by the index's sync and save, and notes each
# committed purge; it goes on from where the database is.
_CHURN = """
import sys
from pathlib import Path
from sqlalchemy import select
from app.core.composition import gallery_spec
from app.core.database import make_engine, session_factory
from app.core.settings import Settings
from app.enrolment.local import purge_record
from app.gallery.models import LicenseRecord
from app.gallery.service import sync_index
settings = Settings()
sessions = session_factory(make_engine(settings.sqlalchemy_url))
log = open(sys.argv[1], "a")
while True:
    with sessions.begin() as session:
        number = session.scalar(select(LicenseRecord.license_number).order_by(LicenseRecord.id))
        if number is None:
            break
        purge_record(session, number)
    log.write(number + "\\n"); log.flush()
    sync_index(sessions, gallery_spec(settings))
"""


def test_purges_and_index_saves_killed_twenty_times_never_leave_a_disagreeing_index(
    settings: Settings,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    report_figure: Callable[[str], None],
) -> None:
    spec = gallery_spec(settings)
    synthetic_gallery(sessions, spec, 10_000)
    environment = service_environment(settings)
    log = tmp_path / "purged.txt"
    command = [sys.executable, "-c", _CHURN, str(log)]
    rng = random.Random(11)
    torn = 0
    for _ in range(KILLS):
        noted = log.stat().st_size if log.exists() else 0
        running = start(command, environment)
        grew = lambda: log.exists() and log.stat().st_size > noted  # noqa: E731
        assert kill_at_random(running, rng, 1.0, grew), "the purges ended before the kill"
        torn += any(spec.index_dir.glob(".*.tmp"))  # killed inside a save
        logged = log.read_text().split()
        with sessions() as session:
            left = set(session.scalars(select(LicenseRecord.license_number)))
        gone = {f"WDL{n:09d}" for n in range(10_000)} - left
        # Every purge noted is committed; at most the one the kill interrupted is not noted.
        assert set(logged) <= gone and len(gone - set(logged)) <= 1
        served_agrees(sessions, settings)
    report_figure(
        f"purge and index save killed {KILLS} times: {len(log.read_text().split())} purges "
        f"committed, {torn} kills inside an index save"
    )
