"""The audit log's hash chain: any single edited, deleted, inserted or swapped entry is found
and named, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from app import audit
from app.models import AuditEntry

ENTRIES = 8


@pytest.fixture
def logged(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    for n in range(ENTRIES):
        with sessions.begin() as session:
            audit.record(
                session, "test", f"event.{n}", f"account:{n}", "success", f"request:{n}", n=n
            )
    return sessions


def entry(session: Session, seq: int) -> AuditEntry:
    return session.scalars(select(AuditEntry).where(AuditEntry.seq == seq)).one()


def edit(session: Session, seq: int) -> None:
    session.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(outcome="failure"))


def edit_and_rehash(session: Session, seq: int) -> None:
    """Edit an entry and recompute its own hash: the next entry's link still breaks."""
    row = entry(session, seq)
    row.actor = "account:999"
    row.hash = audit.chain_hash(row.prev_hash, row)


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
    previous = entry(session, seq - 1).hash if seq > 1 else audit.GENESIS_HASH
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
    forged.hash = audit.chain_hash(previous, forged)
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
    "delete": (remove, 0),
    "insert": (insert, 1),
    "swap": (swap, 0),
}


def test_an_untouched_log_verifies(logged: sessionmaker[Session]) -> None:
    with logged() as session:
        assert audit.verify(session) == audit.Verification(True, ENTRIES)


@pytest.mark.parametrize("seq", [1, 4, ENTRIES - 1])
@pytest.mark.parametrize("kind", TAMPERING)
def test_any_single_tampering_is_found_and_named(
    logged: sessionmaker[Session], kind: str, seq: int
) -> None:
    change, offset = TAMPERING[kind]
    with logged.begin() as session:
        change(session, seq)
    with logged() as session:
        result = audit.verify(session)
    assert not result.intact and result.problem
    assert result.first_bad_seq == seq + offset


def test_a_cut_off_tail_is_found(logged: sessionmaker[Session]) -> None:
    with logged.begin() as session:
        remove(session, ENTRIES)
    with logged() as session:
        result = audit.verify(session)
    assert not result.intact and result.first_bad_seq == ENTRIES


def test_concurrent_appends_form_one_chain(sessions: sessionmaker[Session]) -> None:
    def append(worker: int) -> None:
        for n in range(10):
            with sessions.begin() as session:
                audit.record(session, "test", "event", f"account:{worker}", "success", n=n)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with sessions() as session:
        assert audit.verify(session) == audit.Verification(True, 40)
