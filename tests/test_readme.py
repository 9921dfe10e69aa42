"""The README's walkthrough, run word for word with bash and curl against a real server (only
the port, the data folder and the paths of .venv and the datasets are changed), the
accountability report of the service that ran it, and the documents that list what the code
defines, checked against it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from app.audit.models import AuditEntry
from app.core.refusals import Code, table
from app.core.settings import Settings
from matcher.refusals import REFUSAL_CODES
from tests.support.accountability import check_written
from tests.support.commands import FACEMATCH
from tests.support.data import DATASETS
from tests.support.service import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- walkthrough -->\n```sh\n(.*?)```", re.DOTALL)


def walkthrough(port: int) -> str:
    script = "\n".join(BLOCK.findall(README.read_text()))
    return (
        script.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
        .replace("../shared/datasets", str(DATASETS))
        .replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    )


def test_the_readme_walkthrough_works_as_written(tmp_path: Path) -> None:
    port = free_port()
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + walkthrough(port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEMATCH_")}
    env.update(FACEMATCH_DATA_DIR=str(tmp_path / "var"), FACEMATCH_PORT=str(port))
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any("'passed': False, 'rule': '3'" in line for line in lines)
    assert any("'passed': True, 'rule': '4'" in line for line in lines)
    assert ["manager", "in_review", "in_review", "in_review", "approved"] == [
        line for line in lines if line in {"manager", "in_review", "approved"}
    ]
    out = done.stdout
    assert "facial-recognition-operator" in lines and "the order on file" in lines
    assert "a photo of (250, 250)" in lines and "confirmed" in lines
    assert '"last_name":"Merkel","date_of_birth"' in out and '"decision":"confirmed"' in out
    assert "Merkel" not in out.split("a photo of (250, 250)")[0]
    assert '"agency_name":"Homeland Security Investigations","request_id":2' in out
    assert '"rejected_by_rule":{"3":1}' in out and '"forwarded_to_governor_office":1' in out
    assert '"searches":1,"confirmations":1,"releases":1' in out
    assert '"conclusions":{"identifications":1,' in out
    assert '"intact":true' in out and "audit log intact" in out

    # The accountability report of the service that ran it, every figure checked against its
    # source; its transparency figures, for the year to tomorrow, are those the walkthrough's
    # report printed for today.
    wrote = subprocess.run(
        [*FACEMATCH, "report", "accountability", "--out", str(tmp_path / "report")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrote.returncode == 0, wrote.stderr[-3000:]
    report = check_written(tmp_path / "report", Settings(data_dir=tmp_path / "var"))
    printed = json.loads(next(line for line in lines if line.startswith('{"period_from"')))
    period = ("period_from", "period_to")
    assert {k: v for k, v in report["transparency"].items() if k not in period} == {
        k: v for k, v in printed.items() if k not in period
    }
    assert report["operating_point"]["sha256"] in lines


def test_the_table_of_refusal_codes_is_the_catalogue() -> None:
    """The one list of codes is app.core.refusals; the API document shows it as it is."""
    assert table() in (ROOT / "docs" / "api.md").read_text()


def test_the_configuration_document_names_every_setting_and_no_other() -> None:
    documented = set(
        re.findall(r"`FACEMATCH_([A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text())
    )
    assert documented == {name.upper() for name in Settings.model_fields}


def test_every_document_the_readme_links_to_exists() -> None:
    for document in (ROOT / "README.md", *(ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", document.read_text()):
            assert (document.parent / target).exists(), f"{document.name} links to {target}"


def test_the_codes_the_matcher_and_the_token_reader_raise_are_in_the_catalogue() -> None:
    for code, too_large in REFUSAL_CODES.items():
        assert Code[code].status == (413 if too_large else 422), code
    for code in ("token_expired", "invalid_token"):
        assert Code[code].status == 401
    assert len(Code) == len(Code.__members__), "two codes share a status and meaning"
    # The audit log records a refusal as its outcome, in 32 characters.
    outcome = AuditEntry.__table__.c.outcome.type.length  # type: ignore[attr-defined]
    assert all(len(f"refused:{code}") <= outcome for code in Code), "a code too long to audit"
