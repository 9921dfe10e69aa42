"""The operations team's metrics: scraped after real searches, refusals and sign-ins, they show
them; only the scrape token opens them; an audit entry that cannot be written fails its action
and shows there."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.api.main import create_app
from app.audit.models import AuditEntry
from app.core.settings import Settings
from app.gallery.store import template_count
from app.requests.models import AgencyRequest
from auth import Role
from tests.support.data import sample
from tests.support.requests import request_body
from tests.support.searches import Desk
from tests.support.service import LOOPBACK
from tests.support.staff import Staff

TOKEN = secrets.token_urlsafe(32)
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client | TestClient) -> Samples:
    """Every sample the metrics hold, by name and labels."""
    answer = client.get("/metrics", headers=SCRAPER)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def scraped(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "metrics_token": SecretStr(TOKEN),
            "authorised_searches": 10,
            "lockout_failures": 2,
            "audit_anchor_interval_s": 1,
        }
    )


@pytest.fixture
def desk(
    scraped: Settings, sessions: sessionmaker[Session], gallery_rows: list[dict]
) -> Iterator[Desk]:
    with TestClient(create_app(scraped), client=LOOPBACK) as client:
        yield Desk(client, Staff.in_process(sessions, scraped))


def test_searches_refusals_and_sign_ins_show_in_the_metrics(
    desk: Desk, scraped: Settings, sessions: sessionmaker[Session]
) -> None:
    client = desk.client
    before = scrape(client)
    assert desk.search(sample("obama2.jpg")).json()["candidates"]
    assert desk.search(sample("alex-lacamoire.png")).json()["candidates"] == []
    assert desk.search(b"not a photo").json()["code"] == "unsupported_image"
    assert desk.search(sample("two_people.jpg")).json()["code"] == "multiple_faces"
    wrong = {"username": "olga.operator", "password": "not her password", "totp_code": "000000"}
    for _ in range(2):  # two wrong in a row lock the account (FACEMATCH_LOCKOUT_FAILURES)
        assert client.post("/v1/auth/login", json=wrong).status_code == 401
    after = scrape(client)

    assert grew(before, after, "facematch_searches_total", outcome="candidates") == 1
    assert grew(before, after, "facematch_searches_total", outcome="no_candidate") == 1
    assert grew(before, after, "facematch_searches_total", outcome="refused") == 2
    for code, times in [("unsupported_image", 1), ("multiple_faces", 1)]:
        assert grew(before, after, "facematch_refusals_total", code=code) == times
    assert grew(before, after, "facematch_refusals_total", code="invalid_credentials") == 2
    assert grew(before, after, "facematch_sign_in_failures_total") == 2
    assert grew(before, after, "facematch_lockouts_total") == 1
    # Every probe's encoding is timed (the one refused by its header too); the index is
    # searched only for the two that gave a template.
    assert grew(before, after, "facematch_probe_encode_seconds_count") == 4
    assert grew(before, after, "facematch_index_search_seconds_count") == 2
    with sessions() as session:
        entries = session.scalar(select(func.count()).select_from(AuditEntry))
        model = desk.client.get("/v1/health").json()["model_id"]
        person_templates = template_count(session, model, "person")
    # Four searches and two sign-ins, each audited once.
    assert grew(before, after, "facematch_audit_entries_total") == 6
    assert entries is not None and entries >= 6
    assert after[("facematch_audit_write_failures_total", ())] == before.get(
        ("facematch_audit_write_failures_total", ()), 0
    )
    templates = (("model", model), ("templates", "person"))
    assert after[("facematch_gallery_templates", templates)] == person_templates == 3
    engine = (("engine", scraped.engine),)
    assert after[("facematch_gallery_revision_lag", engine)] == 0
    workers = after[("facematch_probe_workers", (("state", "all"),))]
    assert after[("facematch_probe_workers", (("state", "ready"),))] == workers >= 1
    assert after[("facematch_probes_waiting", ())] == 0
    assert after[("facematch_audit_unanchored_entries", ())] >= 0
    # Anchored within the interval (a second here): the newest anchor's age shows from then.
    deadline = time.monotonic() + 30
    while ("facematch_audit_anchor_age_seconds", ()) not in after:
        assert time.monotonic() < deadline, "no audit anchor written"
        time.sleep(0.2)
        after = scrape(client)
    assert 0 <= after[("facematch_audit_anchor_age_seconds", ())] < 30
    # No label names a person: only outcomes, codes, engines, kinds and states.
    names = {label for _, labels in after for label, _ in labels}
    assert names <= {"outcome", "code", "model", "templates", "engine", "state", "le"}


# Nothing here needs a second engine or a photo.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_the_scrape_token_opens_the_metrics(
    scraped: Settings, settings: Settings, staff: Staff
) -> None:
    staff.add("aldo.auditor", Role.auditor)
    staff.add("ada.admin", Role.admin)
    with TestClient(create_app(scraped), client=LOOPBACK) as client:
        for headers in [
            {},
            {"Authorization": f"Bearer {TOKEN[:-1]}"},
            {"Authorization": f"Basic {TOKEN}"},
            staff.headers("aldo.auditor"),
            staff.headers("ada.admin"),
        ]:
            refused = client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["code"] == "invalid_scrape_token"
        assert client.get("/metrics", headers=SCRAPER).status_code == 200
    with TestClient(create_app(settings), client=LOOPBACK) as client:
        off = client.get("/metrics", headers=SCRAPER)
        assert off.status_code == 404 and off.json()["code"] == "not_found"


def refuse_audit_entries(session: Session) -> None:
    """What a full disk, a revoked grant or a broken replica does to the audit log: no entry
    can be written. A trigger, as an insider with the database's rights could add one."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'no space left on device'; END $$ LANGUAGE plpgsql"
            )
        )
        session.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )
        )
    else:
        session.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'no space left on device'); END"
            )
        )


def allow_audit_entries(session: Session) -> None:
    session.execute(
        text(
            "DROP TRIGGER refuse_audit"
            + (" ON audit_log" if session.get_bind().dialect.name == "postgresql" else "")
        )
    )


def test_an_audit_entry_that_cannot_be_written_fails_its_action_and_shows(
    scraped: Settings, sessions: sessionmaker[Session], staff: Staff
) -> None:
    staff.add("rita.records", Role.records_clerk)
    with TestClient(create_app(scraped), client=LOOPBACK) as client:
        assert isinstance(client.app, FastAPI)
        before = scrape(client)
        with sessions.begin() as session:
            refuse_audit_entries(session)
        submitted = client.post(
            "/v1/requests", headers=staff.headers("rita.records"), json=request_body()
        )
        signed_in = client.post(
            "/v1/auth/login",
            json={"username": "rita.records", "password": "wrong", "totp_code": "000000"},
        )
        failing = scrape(client)
        with sessions.begin() as session:
            allow_audit_entries(session)
        again = client.post(
            "/v1/requests", headers=staff.headers("rita.records"), json=request_body()
        )
    for refused in (submitted, signed_in):
        assert refused.status_code == 503 and refused.json()["code"] == "audit_unavailable"
    # The request was not kept: the only one there is the one sent after the log recovered.
    assert again.status_code == 201
    with sessions() as session:
        assert session.scalars(select(AgencyRequest.id)).all() == [again.json()["id"]]
    assert grew(before, failing, "facematch_audit_write_failures_total") >= 2
    assert grew(before, failing, "facematch_refusals_total", code="audit_unavailable") == 2
    assert grew(before, failing, "facematch_audit_entries_total") == 0


@contextmanager
def database_failing(
    client: TestClient, sessions: sessionmaker[Session], errcode: str = "disk_full"
) -> Iterator[None]:
    """A database that fails every change where no route catches it. PostgreSQL: the change
    and its audit entry are written, and COMMIT fails as on a full disk (a deferred trigger,
    as an insider could add one). SQLite: the service's connections can no longer write (a
    file gone read-only)."""
    if sessions.kw["bind"].dialect.name == "postgresql":
        with sessions.begin() as session:
            session.execute(
                text(
                    "CREATE FUNCTION refuse_commit() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'could not extend file' USING ERRCODE = "
                    f"'{errcode}'; END $$ LANGUAGE plpgsql"
                )
            )
            session.execute(
                text(
                    "CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON audit_log "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit()"
                )
            )
        yield
        with sessions.begin() as session:
            session.execute(text("DROP TRIGGER refuse_commit ON audit_log"))
        return
    assert isinstance(client.app, FastAPI)
    engine = client.app.state.services.sessions.kw["bind"]

    def read_only(connection: Any, _record: Any) -> None:
        connection.execute("PRAGMA query_only=ON")

    event.listen(engine, "connect", read_only)
    engine.dispose()
    yield
    event.remove(engine, "connect", read_only)
    engine.dispose()


def test_a_change_the_database_cannot_keep_is_refused_as_unavailable_and_nothing_stays(
    scraped: Settings, sessions: sessionmaker[Session], staff: Staff
) -> None:
    staff.add("rita.records", Role.records_clerk)
    clerk = staff.headers("rita.records")
    with TestClient(create_app(scraped), client=LOOPBACK) as client:
        before = scrape(client)
        with database_failing(client, sessions):
            refused = client.post("/v1/requests", headers=clerk, json=request_body())
            failing = scrape(client)
        again = client.post("/v1/requests", headers=clerk, json=request_body())
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "database_unavailable"
    assert again.status_code == 201
    with sessions() as session:
        assert session.scalars(select(AgencyRequest.id)).all() == [again.json()["id"]]
        assert (
            session.scalar(select(func.count()).where(AuditEntry.outcome.like("refused:database%")))
            == 0
        )
    assert grew(before, failing, "facematch_refusals_total", code="database_unavailable") == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [
        ("serialization_failure", 409, "conflict"),  # a race the database broke off
        ("statement_too_complex", 500, "internal_error"),  # a fault in the service's own SQL
    ],
)
def test_a_commit_that_fails_otherwise_is_answered_by_what_the_database_says_it_was(
    scraped: Settings,
    sessions: sessionmaker[Session],
    staff: Staff,
    errcode: str,
    status: int,
    code: str,
) -> None:
    staff.add("rita.records", Role.records_clerk)
    with TestClient(create_app(scraped), client=LOOPBACK) as client:
        with database_failing(client, sessions, errcode):
            refused = client.post(
                "/v1/requests", headers=staff.headers("rita.records"), json=request_body()
            )
    assert (refused.status_code, refused.json()["code"]) == (status, code)
    with sessions() as session:
        assert session.scalars(select(AgencyRequest.id)).all() == []
