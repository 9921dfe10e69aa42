"""The append-only audit log: every access and change, with the CJIS fields (time, component,
event type, actor, outcome, object id), each entry chained to the one before by SHA-256.

Entries hold identifiers only (account:7, request:12), never a template, a photo or an
identity field. An entry is written in the same transaction as the change it records.

Every state-changing request writes exactly one entry: its route writes it, and a refusal
raised before the route could (a missing token, an invalid body) is written by the error
handlers, through the request's audit scope.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.errors import ApiError
from app.models import AuditEntry, AuditHead
from matcher import FaceRefusal

GENESIS_HASH = "0" * 64
_CHUNK = 1000

Detail = str | int | float | bool | None


@dataclass
class Scope:
    """One state-changing request's duty to the log: who is calling, as far as is known, and
    whether its entry is written. Mutable, so a route running in a worker thread (in a copy
    of the request's context) marks the very object the error handlers read."""

    actor: str = "anonymous"
    written: bool = False


_scope: ContextVar[Scope | None] = ContextVar("audit_scope", default=None)


def open_scope() -> Scope:
    scope = Scope()
    _scope.set(scope)
    return scope


def current_scope() -> Scope | None:
    return _scope.get()


def chain_hash(prev_hash: str, entry: AuditEntry) -> str:
    """SHA-256 over the previous hash and every field of the entry, canonically encoded."""
    at = entry.at.astimezone(UTC).isoformat(timespec="microseconds")
    fields = [
        prev_hash,
        entry.seq,
        at,
        entry.component,
        entry.event_type,
        entry.actor,
        entry.outcome,
        entry.object_id,
        entry.details,
    ]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def record(
    session: Session,
    component: str,
    event_type: str,
    actor: str,
    outcome: str,
    object_id: str | None = None,
    **details: Detail,
) -> AuditEntry:
    """Append one entry in the caller's transaction.

    The head row is updated first: that takes its lock (a row lock in PostgreSQL, the write
    lock in SQLite) before it is read, so concurrent appends queue up into one chain.
    """
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one()
    entry = AuditEntry(
        seq=head.seq,
        at=datetime.now(UTC),
        component=component,
        event_type=event_type,
        actor=actor,
        outcome=outcome,
        object_id=object_id,
        details=json.dumps(details, sort_keys=True, separators=(",", ":")),
        prev_hash=head.hash,
    )
    entry.hash = chain_hash(head.hash, entry)
    head.hash = entry.hash
    session.add(entry)
    session.flush()
    scope = _scope.get()
    if scope is not None:
        scope.written = True
    return entry


@contextmanager
def refusals_recorded(
    session: Session, component: str, event_type: str, actor: str, object_id: str | None = None
) -> Iterator[None]:
    """Record a refusal raised inside the block, after its transaction rolled back."""
    try:
        yield
    except (ApiError, FaceRefusal) as refusal:
        session.rollback()
        with session.begin():
            record(session, component, event_type, actor, f"refused:{refusal.code}", object_id)
        raise


@dataclass(frozen=True)
class Verification:
    intact: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify(session: Session) -> Verification:
    """Walk the chain from the start; name the first entry that is edited, out of place,
    inserted, or missing (a deleted entry shows as a gap, a cut-off tail against the head)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    expected_seq, prev_hash, seen = 1, GENESIS_HASH, 0
    after = 0
    while True:
        chunk = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(_CHUNK)
        ).all()
        for entry in chunk:
            if entry.seq != expected_seq:
                return Verification(
                    False, seen, expected_seq, f"entry {expected_seq} is missing or out of place"
                )
            if entry.prev_hash != prev_hash:
                return Verification(
                    False, seen, entry.seq, f"entry {entry.seq} does not follow the entry before it"
                )
            if chain_hash(prev_hash, entry) != entry.hash:
                return Verification(
                    False, seen, entry.seq, f"entry {entry.seq} was changed after it was written"
                )
            expected_seq, prev_hash, seen = expected_seq + 1, entry.hash, seen + 1
        if len(chunk) < _CHUNK:
            break
        after = chunk[-1].seq
    if head.seq != seen or head.hash != prev_hash:
        return Verification(
            False, seen, seen + 1, f"the log ends at entry {seen} but the head says {head.seq}"
        )
    return Verification(True, seen)
