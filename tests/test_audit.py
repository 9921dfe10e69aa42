"""The audit log's hash chain: any single edited, deleted, inserted or swapped entry is found
and named, on SQLite and PostgreSQL; and after a retention purge, the chain verifies from the
purge's signed checkpoint, which nobody without the signing key can move or forge."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextvars import copy_context
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit import trail
from app.audit.keys import AuditKeys
from app.audit.models import AuditCheckpoint, AuditEntry
from app.audit.retention import RetentionPolicy, purge
from app.core.logs import begin_request
from app.core.settings import Settings

ENTRIES = 8
SIGNING_KEY = Ed25519PrivateKey.generate()
SIGNER = AuditKeys(SIGNING_KEY)
NO_KEYS = AuditKeys(None)
YEAR = timedelta(days=365)
POLICY = RetentionPolicy(candidates=timedelta(days=90), probe_hashes=YEAR, audit=YEAR)


@pytest.fixture
def logged(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Entries each written while serving an HTTP request of its own (its id recorded)."""

    def served(n: int) -> None:
        begin_request()
        with sessions.begin() as session:
            trail.record(
                session, "test", f"event.{n}", f"account:{n}", "success", f"request:{n}", n=n
            )

    for n in range(ENTRIES):
        copy_context().run(served, n)
    return sessions


def entry(session: Session, seq: int) -> AuditEntry:
    return session.scalars(select(AuditEntry).where(AuditEntry.seq == seq)).one()


def edit(session: Session, seq: int) -> None:
    session.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(outcome="failure"))


def reattribute(session: Session, seq: int) -> None:
    """Name another HTTP request as the entry's, or none."""
    other = None if seq % 2 else "0123456789abcdef"
    session.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(request_id=other))


def edit_and_rehash(session: Session, seq: int) -> None:
    """Edit an entry and recompute its own hash: the next entry's link still breaks."""
    row = entry(session, seq)
    row.actor = "account:999"
    row.hash = trail.chain_hash(row.prev_hash, row)


def remove(session: Session, seq: int) -> None:
    session.execute(delete(AuditEntry).where(AuditEntry.seq == seq))


def insert(session: Session, seq: int) -> None:
    """Make room after `seq - 1` and insert a forged entry chained to it."""
    for later in range(ENTRIES, seq - 1, -1):
        session.execute(update(AuditEntry).where(AuditEntry.seq == later).values(seq=later + 100))
        session.flush()
        session.execute(
            update(AuditEntry).where(AuditEntry.seq == later + 100).values(seq=later + 1)
        )
    previous = entry(session, seq - 1).hash if seq > 1 else trail.GENESIS_HASH
    forged = AuditEntry(
        seq=seq,
        at=entry(session, seq + 1).at,
        component="test",
        event_type="forged",
        actor="account:1",
        outcome="success",
        object_id=None,
        details=json.dumps({}),
        prev_hash=previous,
    )
    forged.hash = trail.chain_hash(previous, forged)
    session.add(forged)


def swap(session: Session, seq: int) -> None:
    """Exchange an entry's place with the next one's."""
    for old, new in ((seq, -1), (seq + 1, seq), (-1, seq + 1)):
        session.execute(update(AuditEntry).where(AuditEntry.seq == old).values(seq=new))
        session.flush()


TAMPERING: dict[str, tuple[Callable[[Session, int], None], int]] = {
    # name: (change, offset from the changed entry to the one named as first bad). A forged
    # entry that links to its predecessor and hashes right shows at the next entry's link.
    "edit": (edit, 0),
    "edit and rehash": (edit_and_rehash, 1),
    "another request's id": (reattribute, 0),
    "delete": (remove, 0),
    "insert": (insert, 1),
    "swap": (swap, 0),
}


def test_an_untouched_log_verifies(logged: sessionmaker[Session]) -> None:
    with logged() as session:
        assert trail.verify(session, NO_KEYS) == trail.Verification(True, ENTRIES)


@pytest.mark.parametrize("seq", [1, 4, ENTRIES - 1])
@pytest.mark.parametrize("kind", TAMPERING)
def test_any_single_tampering_is_found_and_named(
    logged: sessionmaker[Session], kind: str, seq: int
) -> None:
    change, offset = TAMPERING[kind]
    with logged.begin() as session:
        change(session, seq)
    with logged() as session:
        result = trail.verify(session, NO_KEYS)
    assert not result.intact and result.problem
    assert result.first_bad_seq == seq + offset


def test_a_cut_off_tail_is_found(logged: sessionmaker[Session]) -> None:
    with logged.begin() as session:
        remove(session, ENTRIES)
    with logged() as session:
        result = trail.verify(session, NO_KEYS)
    assert not result.intact and result.first_bad_seq == ENTRIES


def test_concurrent_appends_form_one_chain(sessions: sessionmaker[Session]) -> None:
    def append(worker: int) -> None:
        for n in range(10):
            with sessions.begin() as session:
                trail.record(session, "test", "event", f"account:{worker}", "success", n=n)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with sessions() as session:
        assert trail.verify(session, NO_KEYS) == trail.Verification(True, 40)


# Retention: entries deleted behind a signed checkpoint

PURGED = 4


@pytest.fixture
def purged(logged: sessionmaker[Session]) -> sessionmaker[Session]:
    """The log a year after entry 5 was written: entries 1-4 purged behind a checkpoint."""
    with logged.begin() as session:
        a_year_on = entry(session, PURGED + 1).at + YEAR
        done = purge(session, POLICY, SIGNER, a_year_on, "cli:admin")
    assert (done.audit_entries, done.checkpoint_seq) == (PURGED, PURGED)
    return logged


def test_a_purge_deletes_old_entries_behind_a_signed_checkpoint(
    purged: sessionmaker[Session],
) -> None:
    with purged() as session:
        assert session.scalar(select(func.min(AuditEntry.seq))) == PURGED + 1
        last = entry(session, ENTRIES + 1)
        assert (last.event_type, last.actor) == ("retention.purge", "cli:admin")
        assert json.loads(last.details)["audit_entries"] == PURGED
        remaining = ENTRIES - PURGED + 1
        assert trail.verify(session, SIGNER) == trail.Verification(True, remaining)
        # An auditor holding only the public key verifies it too; nobody without it does.
        assert trail.verify(session, AuditKeys(None, [SIGNING_KEY.public_key()])).intact
        unchecked = trail.verify(session, NO_KEYS)
        assert not unchecked.intact and unchecked.first_bad_seq == PURGED
    with purged.begin() as session:
        again = purge(session, POLICY, SIGNER, datetime.now(UTC) + YEAR - timedelta(days=1), "x")
    assert again.audit_entries == 0


def test_audit_entries_are_kept_at_least_a_year(logged: sessionmaker[Session]) -> None:
    with pytest.raises(ValidationError, match="audit_retention_days"):
        Settings(audit_retention_days=364)
    with logged.begin() as session:
        done = purge(session, POLICY, SIGNER, datetime.now(UTC) + YEAR - timedelta(minutes=1), "x")
    assert done.audit_entries == 0 and done.checkpoint_seq is None


def forge_checkpoint(session: Session) -> None:
    """Sign the purged entry's hash again, with a key of one's own."""
    signed = session.scalars(select(AuditCheckpoint)).one()
    forged = AuditKeys(Ed25519PrivateKey.generate()).sign(signed.seq, signed.hash)
    session.delete(signed)
    session.flush()
    session.add(forged)


AFTER_A_PURGE: dict[str, tuple[Callable[[Session], object], int]] = {
    # name: (change, the entry named as first bad)
    "checkpoint deleted": (lambda s: s.execute(delete(AuditCheckpoint)), 1),
    "checkpoint forged": (forge_checkpoint, PURGED),
    "checkpoint moved on": (
        lambda s: s.execute(update(AuditCheckpoint).values(seq=PURGED + 1)),
        PURGED + 1,
    ),
    "checkpoint hash edited": (
        lambda s: s.execute(update(AuditCheckpoint).values(hash="0" * 64)),
        PURGED,
    ),
    "first kept entry deleted": (lambda s: remove(s, PURGED + 1), PURGED + 1),
    "kept entry edited": (lambda s: edit(s, PURGED + 2), PURGED + 2),
}


@pytest.mark.parametrize("kind", AFTER_A_PURGE)
def test_tampering_after_a_purge_is_found(purged: sessionmaker[Session], kind: str) -> None:
    change, first_bad = AFTER_A_PURGE[kind]
    with purged.begin() as session:
        change(session)
    with purged() as session:
        result = trail.verify(session, SIGNER)
    assert not result.intact and result.problem
    assert result.first_bad_seq == first_bad
