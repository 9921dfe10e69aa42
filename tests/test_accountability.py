"""The accountability report (RCW 43.386.020): every figure it states checked against where it
comes from (the operating point file, the transparency report, the settings, the installed
packages and weight files), its HTML the console's template drawing those figures and no
number of its own; the command that writes it, its refusals, and the auditor's page.
tests/test_readme.py checks the report of a service that has run the README's walkthrough."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEntry
from app.cli.reports import accountability_document
from app.core.refusals import Refusal
from app.core.settings import Settings
from app.oversight.accountability import ENGINE_PARTS, report_period
from app.oversight.schemas import AccountabilityReport
from matcher.operating_point import shipped
from matcher.weights import verified_file
from tests.support.accountability import check_document, check_report, check_written
from tests.support.commands import invoke
from tests.support.console import sign_in
from tests.support.requests import approved_request, request_body
from tests.support.staff import Staff


@pytest.fixture
def staff(staff: Staff) -> Staff:
    staff.add_agency()
    return staff


def test_the_report_states_the_service_as_it_runs(
    client: TestClient,
    staff: Staff,
    settings: Settings,
    sessions: sessionmaker[Session],
    gallery_rows: list[dict[str, str]],
) -> None:
    """A request approved, one rejected at screening (rule 3), and the report as the API
    gives it, every figure its source's."""
    approved_request(client, staff)
    immigration_only = request_body(crime={"category": "narcotics", "statutes": ["8 U.S.C. 1326"]})
    rejected = client.post(
        "/v1/requests", headers=staff.headers("review-system"), json=immigration_only
    )
    assert rejected.json()["screening"]["rule"] == "3"

    got = client.get("/v1/reports/accountability", headers=staff.headers("aldo.auditor"))
    assert got.status_code == 200, got.json()
    report = got.json()
    with sessions.begin() as session:
        check_report(report, settings, session)
    today = datetime.now(UTC).date()
    assert report["transparency"]["period_to"] == str(today + timedelta(days=1))
    assert report["transparency"]["requests"] == 2
    assert report["transparency"]["screening"]["rejected_by_rule"] == {"3": 1}
    assert report["operating_point"]["people_enrolled"] == len(gallery_rows)
    check_document(accountability_document(AccountabilityReport.model_validate(report)), report)

    with sessions.begin() as session:
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.event_type == "report.accountability")
        ).one()
    assert audited.actor == f"account:{staff.ids['aldo.auditor']}"
    assert json.loads(audited.details) == {
        "period_from": report["transparency"]["period_from"],
        "period_to": report["transparency"]["period_to"],
    }


def test_the_auditor_reads_and_prints_it_in_the_console_and_nobody_else(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    sign_in(client, staff, "aldo.auditor")
    page = client.get("/console/accountability", params={"from": "2026-01-01", "to": "2027-01-01"})
    assert page.status_code == 200
    assert 'href="/console/accountability"' in page.text and "data-print" in page.text
    assert 'id="accountability"' in page.text and "Requests and releases, 2026-01-01" in page.text
    assert hashlib.sha256(settings.operating_point_file.read_bytes()).hexdigest() in page.text
    backwards = client.get(
        "/console/accountability", params={"from": "2026-02-01", "to": "2026-01-01"}
    )
    assert backwards.status_code == 422 and "invalid_period" in backwards.text
    # The figures it shares with the operating point's and the transparency report's pages.
    assert 'id="groups"' in client.get("/console/operating-point").text
    assert "Confirmations, releases" in client.get("/console/report").text

    client.cookies.clear()
    sign_in(client, staff, "rita.records")
    refused = client.get("/console/accountability")
    assert refused.status_code == 403 and "forbidden" in refused.text


def test_the_command_writes_the_report_and_audits_it(
    settings: Settings,
    sessions: sessionmaker[Session],
    gallery_rows: list[dict[str, str]],
    tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    written = invoke(
        settings, "report", "accountability", "--out", str(out), "--from", "2026-01-01"
    )
    assert written.exit_code == 0, written.output
    report = check_written(out, settings)
    assert report["transparency"]["period_from"] == "2026-01-01"
    with sessions.begin() as session:
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.event_type == "report.accountability")
        ).one()
    assert audited.actor.startswith("cli:") and audited.outcome == "success"


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--from", "2026-02-01", "--to", "2026-02-01"], {}, "--to must be a later day"),
        (["--to", "2026-02-01", "--from", "2026-03-01"], {}, "--to must be a later day"),
        ([], {"FACEMATCH_OPERATING_POINT": str(shipped("dlib"))}, "not the configured engine"),
        ([], {"FACEMATCH_OPERATING_POINT": "no-such-point.json"}, "cannot be read"),
    ],
)
def test_the_command_refuses_in_a_sentence(
    settings: Settings, tmp_path: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    out = tmp_path / "report"
    refused = invoke(settings, "report", "accountability", "--out", str(out), *args, env=env)
    assert refused.exit_code == 2 and says in refused.output
    assert not out.exists()


def test_a_weight_file_changed_under_the_service_is_refused_not_reported(
    client: TestClient,
    staff: Staff,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service checked its weights when it started; a file swapped since is named, and
    nothing is reported as if it were the file measured (by the API, the console or the
    command)."""
    runtime, weights, verified = ENGINE_PARTS[settings.engine_spec.name]
    name = next(iter(weights))
    swapped = tmp_path / name
    swapped.write_bytes(Path(verified(name)).read_bytes() + b"\0")
    monkeypatch.setitem(
        ENGINE_PARTS,
        settings.engine_spec.name,
        (runtime, weights, lambda each: verified_file(swapped, weights[each])),
    )
    refused = client.get("/v1/reports/accountability", headers=staff.headers("aldo.auditor"))
    assert refused.status_code == 503 and refused.json()["code"] == "engine_files_changed"
    assert str(swapped) in refused.json()["message"]
    sign_in(client, staff, "aldo.auditor")
    page = client.get("/console/accountability")
    assert page.status_code == 503 and str(swapped) in page.text
    out = tmp_path / "report"
    written = invoke(settings, "report", "accountability", "--out", str(out))
    assert written.exit_code == 2 and str(swapped) in written.output
    assert not out.exists()


def test_the_command_will_not_write_over_a_file(settings: Settings, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("someone's notes")
    refused = invoke(settings, "report", "accountability", "--out", str(taken))
    assert refused.exit_code == 2 and "is a file, not a folder" in refused.output
    assert taken.read_text() == "someone's notes"


def test_the_period_is_the_year_up_to_today_unless_asked() -> None:
    today = date(2026, 3, 1)
    assert report_period(None, None, today) == (date(2025, 3, 2), date(2026, 3, 2))
    assert report_period(date(2026, 1, 1), None, today) == (date(2026, 1, 1), date(2026, 3, 2))
    assert report_period(None, date(2026, 1, 1), today) == (date(2025, 1, 1), date(2026, 1, 1))
    for start, end in ((date(2026, 1, 1), date(2026, 1, 1)), (None, date.min)):
        with pytest.raises(Refusal):
            report_period(start, end, today)
