"""Fixtures: real photos from ../shared/datasets, real dlib and FAISS, SQLite and PostgreSQL.

Database tests run once per backend. PostgreSQL comes from FACEMATCH_TEST_POSTGRES_URL, which
`make test` sets by starting a throwaway server (scripts/with-postgres); each test gets a
database of its own on it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.api.main import create_app
from app.core.composition import encoder, template_keys
from app.core.database import make_engine, migrate, session_factory
from app.core.settings import Settings
from app.enrolment.local import Enrolment, PhotoJob, Reject, read_manifest
from matcher import ENGINES, EngineName, Matcher, load_engine
from matcher.pool import Encoding, encode_here
from tests.support.data import DATASETS, LFW, SAMPLES, lfw_rows, write_manifest
from tests.support.keys import TEST_ANCHOR_KEY, TEST_AUDIT_KEY, TEST_KEY, TEST_TEMPLATE_KEY
from tests.support.service import LOOPBACK
from tests.support.staff import Staff


@pytest.fixture(scope="session", autouse=True)
def _datasets_present() -> None:
    if not (SAMPLES.is_dir() and (LFW / "images").is_dir()):
        pytest.exit(f"the shared datasets are missing at {DATASETS}", returncode=2)


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own temporary folder, so what a command writes by default (a
    rejects report) never lands in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session", params=list(ENGINES))
def matcher(request: pytest.FixtureRequest) -> Matcher:
    """Each engine in turn: they must meet the same expectations."""
    engine = load_engine(request.param)
    return Matcher(engine, policy=engine.spec.quality)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'facematch.db'}"
        return
    server = os.environ.get("FACEMATCH_TEST_POSTGRES_URL")
    if not server:
        pytest.fail(
            "FACEMATCH_TEST_POSTGRES_URL is not set: run the tests with `make test`, which starts "
            "a PostgreSQL server, or deselect with -k 'not postgresql'"
        )
    name = f"facematch_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine_name() -> EngineName:
    """The default engine; modules that must hold for both parametrize this."""
    return Settings.model_fields["engine"].default


@pytest.fixture
def settings(database_url: str, engine_name: EngineName, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        jwt_key=TEST_KEY,
        template_key=TEST_TEMPLATE_KEY,
        audit_signing_key=TEST_AUDIT_KEY,
        audit_anchor_key=TEST_ANCHOR_KEY,
        engine=engine_name,
        photo_store=DATASETS,
        # One probe worker for a test's one search at a time: a pool starts all its workers
        # before its first probe, and a second would only cost the machine another start.
        search_workers=1,
    )


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The service in process, called from a loopback address: inside the allowed networks."""
    with TestClient(create_app(settings), client=LOOPBACK) as test_client:
        yield test_client


@pytest.fixture
def staff(sessions: sessionmaker[Session], settings: Settings) -> Staff:
    """Nobody yet: a test, or its module's own `staff` fixture, adds whom it needs, written
    into the test's database (tests/support/staff.py)."""
    return Staff.in_process(sessions, settings)


# The gallery's photos encoded once per engine for the whole run, not once per test: each
# test still records them through enrolment, into its own database.
_ENCODED: dict[tuple[str, Path], Encoding] = {}


@pytest.fixture
def gallery_rows(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> list[dict[str, str]]:
    """Three made-up licences enrolled: Obama and Biden from samples/, and one LFW person."""
    rows = lfw_rows(3)
    rows[0]["photo"], rows[1]["photo"] = "samples/obama.jpg", "samples/biden.jpg"
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    config = encoder(settings, "central")

    def encoded(item: PhotoJob | Reject) -> tuple[PhotoJob | Reject, Encoding | None]:
        if not isinstance(item, PhotoJob):
            return item, None
        key = (settings.engine, item.path)
        if key not in _ENCODED:
            _ENCODED[key] = encode_here(config, str(item.path))
        return item, _ENCODED[key]

    report = Enrolment(sessions, config, template_keys(settings)).record(
        map(encoded, read_manifest(manifest, DATASETS))
    )
    assert report.enrolled == 3
    return rows


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a measured figure; the terminal summary of the run lists them all. They travel
    in the test's report, so they reach the summary from pytest-xdist's workers too."""
    return lambda line: request.node.user_properties.append(("figure", line))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in report.user_properties
        if name == "figure"
    ]
    if figures:
        terminalreporter.section("measured figures")
        for line in figures:
            terminalreporter.write_line(line)
