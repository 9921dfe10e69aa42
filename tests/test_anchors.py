"""Anchors: the audit log's head, signed with a key the database never holds and kept outside
it. An insider who can write the database, and recomputes the chain and the head after an
edit or a cut, is found out against them, on SQLite and PostgreSQL; what was written after
the newest anchor is not."""

from __future__ import annotations

import json
import logging
import socket
import stat
import time
from collections.abc import Callable
from datetime import timedelta
from logging.handlers import SysLogHandler
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.api.main import create_app
from app.audit import trail
from app.audit.anchors import SYSLOG_TAG, AnchorSink, FileSink, anchor_head
from app.audit.keys import Anchor, AuditKeys, read_signing_key
from app.audit.models import AuditEntry, AuditHead
from app.audit.retention import RetentionPolicy, purge
from app.cli import cli
from app.core.composition import StartupRefused, anchor_sink, audit_keys
from app.core.settings import Settings
from auth import Role
from tests.support.commands import service_environment
from tests.support.keys import TEST_ANCHOR_KEY, TEST_AUDIT_KEY
from tests.support.service import LOOPBACK
from tests.support.staff import Staff

YEAR = timedelta(days=365)


def write(sessions: sessionmaker[Session], count: int) -> None:
    for n in range(count):
        with sessions.begin() as session:
            trail.record(
                session, "test", f"event.{n}", f"account:{n}", "success", f"request:{n}", n=n
            )


def seqs(sink: FileSink) -> list[int]:
    return [Anchor.parse(line).seq for line in sink.read() if line]


def verify(
    settings: Settings, sessions: sessionmaker[Session], sink: AnchorSink
) -> trail.Verification:
    with sessions() as session:
        return trail.verify(session, audit_keys(settings), sink.read())


def eventually(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def rewrite(sessions: sessionmaker[Session], seq: int) -> None:
    """What an insider with write access to the database can do: edit entry `seq`, then
    recompute its hash, every later entry's link and hash, and the head's hash."""
    with sessions.begin() as session:
        prev = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == seq - 1))
        prev = prev or trail.GENESIS_HASH
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq >= seq).order_by(AuditEntry.seq)
        ).all()
        for row in rows:
            actor = "account:999" if row.seq == seq else row.actor
            edited = AuditEntry(
                seq=row.seq,
                at=row.at,
                component=row.component,
                event_type=row.event_type,
                actor=actor,
                outcome=row.outcome,
                object_id=row.object_id,
                details=row.details,
            )
            entry_hash = trail.chain_hash(prev, edited)
            session.execute(
                update(AuditEntry)
                .where(AuditEntry.seq == row.seq)
                .values(actor=actor, prev_hash=prev, hash=entry_hash)
            )
            prev = entry_hash
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))


def cut(sessions: sessionmaker[Session], after: int) -> None:
    """Delete the entries after `after` and move the head back to it."""
    with sessions.begin() as session:
        kept = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == after))
        session.execute(delete(AuditEntry).where(AuditEntry.seq > after))
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=after, hash=kept))


@pytest.fixture
def sink(settings: Settings) -> FileSink:
    assert anchor_sink(settings) == FileSink(settings.data_dir / "audit-anchors.jsonl")
    return FileSink(settings.audit_anchor_path)


@pytest.fixture
def anchored(settings: Settings, sessions: sessionmaker[Session], sink: FileSink) -> None:
    """Eight entries, anchored after the fourth and the eighth."""
    for _ in range(2):
        write(sessions, 4)
        anchor_head(sessions, audit_keys(settings), sink)
    assert seqs(sink) == [4, 8]
    assert stat.S_IMODE(sink.path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("seq", "first_bad"), [(2, 1), (4, 1), (6, 5), (8, 5)])
def test_an_anchored_entry_rewritten_with_the_chain_recomputed_is_found(
    settings: Settings,
    sessions: sessionmaker[Session],
    sink: FileSink,
    anchored: None,
    seq: int,
    first_bad: int,
) -> None:
    rewrite(sessions, seq)
    with sessions() as session:
        assert trail.verify(session, audit_keys(settings)) == trail.Verification(True, 8)
    # Nothing tells which entries after the newest anchor that still matches were changed:
    # the first of them is named.
    result = verify(settings, sessions, sink)
    assert not result.intact and result.first_bad_seq == first_bad
    assert result.anchored_seq == (4 if seq > 4 else None)
    assert result.problem and "rewritten" in result.problem


def test_entries_cut_off_with_the_head_moved_back_are_missed_against_the_anchor(
    settings: Settings, sessions: sessionmaker[Session], sink: FileSink, anchored: None
) -> None:
    cut(sessions, 6)
    with sessions() as session:
        assert trail.verify(session, audit_keys(settings)) == trail.Verification(True, 6)
    result = verify(settings, sessions, sink)
    assert (result.intact, result.first_bad_seq, result.anchored_seq) == (False, 7, 4)
    assert result.problem and "ends at entry 6" in result.problem and "entry 8" in result.problem


def test_entries_written_after_the_newest_anchor_can_still_be_cut_unseen(
    settings: Settings, sessions: sessionmaker[Session], sink: FileSink, anchored: None
) -> None:
    """What anchoring leaves open (the threat model says so): the entries since the newest
    anchor are vouched for by the chain alone."""
    write(sessions, 2)
    cut(sessions, 8)
    assert verify(settings, sessions, sink) == trail.Verification(True, 8, anchored_seq=8)


def forged(line: str) -> str:
    """The same statement, signed with a key of one's own."""
    anchor = Anchor.parse(line)
    return AuditKeys(None, (), Ed25519PrivateKey.generate()).anchor(6, anchor.hash).line()


def edited(name: str, value: object) -> Callable[[str], str]:
    return lambda line: json.dumps(json.loads(line) | {name: value})


BROKEN_LINES: dict[str, tuple[Callable[[str], str], int | None, str]] = {
    # name: (change to the anchor of entry 4, the entry named as first bad, problem)
    "hash edited": (edited("hash", "0" * 64), 4, "not signed by a known audit anchor key"),
    "moved on": (edited("seq", 6), 6, "not signed by a known audit anchor key"),
    "time edited": (edited("at", "2020-01-01T00:00:00+00:00"), 4, "not signed"),
    "forged": (forged, 6, "not signed by a known audit anchor key"),
    "cut short": (lambda line: line[:40], None, "line 1 of the audit anchors is no anchor"),
    "a field too many": (edited("note", "x"), None, "line 1 of the audit anchors is no anchor"),
    "not JSON": (lambda line: "anchor", None, "line 1 of the audit anchors is no anchor"),
}


@pytest.mark.parametrize("kind", BROKEN_LINES)
def test_a_forged_or_edited_anchor_breaks_the_log(
    settings: Settings, sessions: sessionmaker[Session], sink: FileSink, anchored: None, kind: str
) -> None:
    change, first_bad, problem = BROKEN_LINES[kind]
    lines = sink.path.read_text().splitlines()
    sink.path.write_text("\n".join([change(lines[0]), *lines[1:]]) + "\n")
    result = verify(settings, sessions, sink)
    assert not result.intact and result.first_bad_seq == first_bad
    assert result.problem and problem in result.problem


def test_anchors_hold_under_a_retired_key_and_those_of_purged_entries_are_skipped(
    settings: Settings, sessions: sessionmaker[Session], sink: FileSink, anchored: None
) -> None:
    keys = audit_keys(settings)
    assert keys.anchoring is not None
    retired = AuditKeys(None, (), Ed25519PrivateKey.generate(), [keys.anchoring.public_key()])
    with sessions() as session:
        assert trail.verify(session, retired, sink.read()).anchored_seq == 8
        assert not trail.verify(session, AuditKeys(keys.signing), sink.read()).intact
    with sessions.begin() as session:
        fifth = session.scalars(select(AuditEntry).where(AuditEntry.seq == 5)).one()
        policy = RetentionPolicy(candidates=YEAR, probe_hashes=YEAR, audit=YEAR)
        assert purge(session, policy, keys, fifth.at + YEAR, "cli:admin").audit_entries == 4
    assert verify(settings, sessions, sink) == trail.Verification(True, 5, anchored_seq=8)


def test_the_api_verifies_against_the_anchor_file(
    settings: Settings, sessions: sessionmaker[Session], anchored: None
) -> None:
    staff = Staff.in_process(sessions, settings)
    staff.add("aldo.auditor", Role.auditor)
    with TestClient(create_app(settings), client=LOOPBACK) as client:
        intact = client.get("/v1/audit/verify", headers=staff.headers("aldo.auditor")).json()
        rewrite(sessions, 6)
        broken = client.get("/v1/audit/verify", headers=staff.headers("aldo.auditor")).json()
    assert (intact["intact"], intact["anchored_seq"]) == (True, 8)
    assert (broken["intact"], broken["first_bad_seq"], broken["anchored_seq"]) == (False, 5, 4)


def test_the_service_anchors_at_start_up_on_its_interval_and_at_shutdown(
    settings: Settings, sessions: sessionmaker[Session], sink: FileSink
) -> None:
    every_second = settings.model_copy(update={"audit_anchor_interval_s": 1})
    with TestClient(create_app(every_second), client=LOOPBACK):
        assert seqs(sink) == []  # an empty log: nothing to anchor
        write(sessions, 3)
        eventually(lambda: seqs(sink) == [3])
        time.sleep(1.5)
        assert seqs(sink) == [3]  # the head did not move
        write(sessions, 2)
        eventually(lambda: seqs(sink) == [3, 5])
    assert seqs(sink) == [3, 5, 5]
    write(sessions, 1)
    with TestClient(create_app(settings), client=LOOPBACK):
        assert seqs(sink) == [3, 5, 5, 6]  # at start-up: the head was not anchored
    with TestClient(create_app(settings), client=LOOPBACK):
        assert seqs(sink) == [3, 5, 5, 6, 6]  # it was: only the one at shutdown
    assert verify(settings, sessions, sink) == trail.Verification(True, 6, anchored_seq=6)


def test_an_anchor_not_written_is_logged_and_retried_and_the_service_serves_on(
    settings: Settings,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = tmp_path / "anchors"
    blocked.mkdir()  # a folder where the file should be: every write fails
    failing = settings.model_copy(
        update={"audit_anchor_interval_s": 1, "audit_anchor_file": blocked}
    )
    write(sessions, 2)
    with caplog.at_level(logging.ERROR, logger="app.audit.anchors"):
        with TestClient(create_app(failing), client=LOOPBACK) as client:
            assert "audit anchor not written" in caplog.text
            assert client.get("/v1/health").status_code == 200
            blocked.rmdir()
            eventually(lambda: seqs(FileSink(blocked)) == [2])


def test_outside_development_no_anchor_key_no_service(settings: Settings) -> None:
    keyless = settings.model_copy(update={"audit_anchor_key": None})
    with pytest.raises(StartupRefused, match="FACEMATCH_AUDIT_ANCHOR_KEY"):
        create_app(keyless)
    # Development mode keeps a key of its own, readable by its owner only.
    create_app(keyless.model_copy(update={"environment": "development"}))
    key_file = settings.data_dir / "development-anchor.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert read_signing_key(key_file.read_text())


def test_each_key_vouches_for_its_own_kind_only() -> None:
    """The service holds the anchor key: it must not sign the checkpoint a purge deletes
    entries behind. Nor can the checkpoint key's holder sign anchors."""
    keys = audit_keys(
        Settings(
            audit_signing_key=SecretStr(TEST_AUDIT_KEY), audit_anchor_key=SecretStr(TEST_ANCHOR_KEY)
        )
    )
    assert keys.signing is not None and keys.anchoring is not None
    entry_hash = "0" * 64
    assert keys.vouches_for_anchor(keys.anchor(8, entry_hash))
    assert not keys.vouches_for_anchor(AuditKeys(None, (), keys.signing).anchor(8, entry_hash))
    assert not keys.vouches_for(AuditKeys(keys.anchoring).sign(8, entry_hash))
    # A retired anchor key is listed apart, and vouches for anchors only.
    retired = AuditKeys(None, (), None, [keys.anchoring.public_key()])
    assert not retired.vouches_for(AuditKeys(keys.anchoring).sign(8, entry_hash))
    assert retired.vouches_for_anchor(keys.anchor(8, entry_hash))


def test_anchor_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="audit_anchor_key"):
        Settings(audit_anchor_key=SecretStr("not-a-key"))
    with pytest.raises(ValidationError, match="audit_anchor_interval_s"):
        Settings(audit_anchor_interval_s=0)
    with pytest.raises(ValidationError, match="audit_anchor_syslog_address"):
        Settings(audit_anchor_syslog_address="localhost:syslog")
    assert audit_keys(Settings(audit_anchor_key=SecretStr(TEST_ANCHOR_KEY))).anchoring is not None


def test_anchors_go_to_the_file_and_to_syslog_and_either_verifies(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    write(sessions, 2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(10)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        syslogged = settings.model_copy(update={"audit_anchor_syslog_address": address})
        anchor = anchor_head(sessions, audit_keys(syslogged), anchor_sink(syslogged))
        datagram = server.recv(4096).decode()
    assert anchor is not None
    # The file the service and the API verify against has it too.
    assert verify(settings, sessions, anchor_sink(syslogged)).anchored_seq == 2
    priority = SysLogHandler.LOG_AUTH << 3 | SysLogHandler.LOG_INFO
    assert datagram == f"<{priority}>{SYSLOG_TAG}{anchor.line()}"
    # The log's export, as the syslog server writes it, verifies as the anchor file does.
    export = FileSink(tmp_path / "syslog")
    message = datagram.removeprefix(f"<{priority}>")
    export.path.write_text(f"Dec  1 12:00:00 records-host {message}\n")
    assert verify(settings, sessions, export) == trail.Verification(True, 2, anchored_seq=2)


runner = CliRunner()


def test_the_audit_anchor_and_verify_commands(
    settings: Settings, sessions: sessionmaker[Session], sink: FileSink, tmp_path: Path
) -> None:
    environment: dict[str, str | None] = {**service_environment(settings)}
    write(sessions, 3)
    for seq in (3, 4):
        done = runner.invoke(cli, ["audit", "anchor"], env=environment)
        assert done.exit_code == 0 and f"anchored at entry {seq}" in done.output, done.output
    verified = runner.invoke(cli, ["audit", "verify"], env=environment)
    assert verified.exit_code == 0
    assert "intact: 5 entries, anchored up to entry 4" in verified.output
    with sessions() as session:
        events = session.scalars(
            select(AuditEntry.event_type).where(AuditEntry.seq > 3).order_by(AuditEntry.seq)
        ).all()
    assert events == ["audit.anchor", "audit.anchor", "audit.verify"]

    export = tmp_path / "exported.jsonl"
    export.write_text(sink.path.read_text())
    sink.path.unlink()
    rewrite(sessions, 4)
    unanchored = runner.invoke(cli, ["audit", "verify"], env=environment)
    assert unanchored.exit_code == 0 and "no anchor checked" in unanchored.output
    broken = runner.invoke(cli, ["audit", "verify", "--anchors", str(export)], env=environment)
    assert broken.exit_code == 1
    assert "BROKEN at entry 4: entry 4 is not the entry anchored" in broken.output
    with export.open("a") as lines:
        lines.write("garbage\n")
    garbled = runner.invoke(cli, ["audit", "verify", "--anchors", str(export)], env=environment)
    assert garbled.exit_code == 1
    assert "BROKEN: line 3 of the audit anchors is no anchor" in garbled.output

    keyless = runner.invoke(
        cli, ["audit", "anchor"], env=environment | {"FACEMATCH_AUDIT_ANCHOR_KEY": None}
    )
    assert keyless.exit_code == 2 and "FACEMATCH_AUDIT_ANCHOR_KEY" in keyless.output
    unwritable = runner.invoke(
        cli, ["audit", "anchor"], env=environment | {"FACEMATCH_AUDIT_ANCHOR_FILE": str(tmp_path)}
    )
    assert unwritable.exit_code == 1 and "not written" in unwritable.output
    with sessions() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    assert (last.event_type, last.outcome) == ("audit.anchor", "failure")
