"""The audit trail: every access and change, with the CJIS fields (time, component, event
type, actor, outcome, object id), each entry chained to the one before by SHA-256.

Entries hold identifiers only (account:7, request:12), never a template, a photo or an
identity field. An entry is written in the same transaction as the change it records.

Every state-changing request writes exactly one entry: its route writes it, and a refusal
raised before the route could (a missing token, an invalid body) is written by the error
handlers, through the request's audit scope.

The chain is checked from its start, or from a purge's signed checkpoint (app.audit.retention),
and against the anchors of its head kept outside the database (app.audit.anchors).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import event, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.audit.keys import Anchor, AuditKeys
from app.audit.models import AuditCheckpoint, AuditEntry, AuditHead
from app.core import metrics
from app.core.logs import current_request_id
from app.core.refusals import Code, Refusal
from matcher import FaceRefusal

GENESIS_HASH = "0" * 64

log = logging.getLogger(__name__)


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
    """SHA-256 over the previous hash and every field of the entry, canonically encoded; the
    request id where there is one (entries from before it was recorded have none, and their
    hashes stand)."""
    at = entry.at.astimezone(UTC).isoformat(timespec="microseconds")
    fields: list[str | int | None] = [
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
    if entry.request_id is not None:
        fields.append(entry.request_id)
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def serialise(session: Session) -> None:
    """Take the lock every append takes first: what the caller's transaction does next
    happens after every other writer's, in every process (a check and the write it guards,
    say, that must not interleave)."""
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))


def head_seq(session: Session) -> int:
    """The number of the newest entry (0: none yet)."""
    return session.execute(select(AuditHead.seq).where(AuditHead.id == 1)).scalar_one()


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

    An entry that cannot be written fails the action it records: the database's refusal is
    counted (facematch_audit_write_failures_total) and raised as `audit_unavailable`, and the
    caller's transaction, the action with it, rolls back.
    """
    session.flush()  # the action's own changes first: a failure among them is the action's
    try:
        entry = _append(session, component, event_type, actor, outcome, object_id, details)
    except SQLAlchemyError as error:
        metrics.AUDIT_WRITE_FAILURES.inc()
        log.error("audit entry not written: %s", type(error).__name__)
        raise Refusal(
            Code.audit_unavailable,
            "Nothing was done: the audit log could not record it. Try again later; the "
            "service's operators have been alerted.",
        ) from None
    session.info[_APPENDED] = session.info.get(_APPENDED, 0) + 1
    scope = _scope.get()
    if scope is not None:
        scope.written = True
    return entry


def _append(
    session: Session,
    component: str,
    event_type: str,
    actor: str,
    outcome: str,
    object_id: str | None,
    details: dict[str, Detail],
) -> AuditEntry:
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
        request_id=current_request_id(),
        prev_hash=head.hash,
    )
    entry.hash = chain_hash(head.hash, entry)
    head.hash = entry.hash
    session.add(entry)
    session.flush()
    return entry


# Entries appended in a session's transaction, counted as written when it commits.
_APPENDED = "audit_entries_appended"


@event.listens_for(Session, "after_commit")
def _written(session: Session) -> None:
    metrics.AUDIT_ENTRIES.inc(session.info.pop(_APPENDED, 0))


@event.listens_for(Session, "after_rollback")
def _not_written(session: Session) -> None:
    session.info.pop(_APPENDED, None)


@contextmanager
def refusals_recorded(
    session: Session, component: str, event_type: str, actor: str, object_id: str | None = None
) -> Iterator[None]:
    """Record a refusal raised inside the block, after its transaction rolled back."""
    try:
        yield
    except (Refusal, FaceRefusal) as refusal:
        session.rollback()
        if refusal.code == Code.audit_unavailable:
            raise  # its entry would not be written either
        with session.begin():
            record(session, component, event_type, actor, f"refused:{refusal.code}", object_id)
        raise


def checkpoint(session: Session, keys: AuditKeys, seq: int) -> AuditCheckpoint:
    """Sign the hash of entry `seq`, which lets the entries up to it be deleted: the rest
    verify from the checkpoint. Where that entry is signed already, that checkpoint stands."""
    existing = session.get(AuditCheckpoint, seq)
    if existing is not None:
        return existing
    entry_hash = session.execute(select(AuditEntry.hash).where(AuditEntry.seq == seq)).scalar_one()
    signed = keys.sign(seq, entry_hash)
    session.add(signed)
    session.flush()
    return signed


@dataclass(frozen=True)
class Verification:
    intact: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None
    # The newest anchor the log was found to match: the entries up to it are as anchored.
    anchored_seq: int | None = None


def verify(session: Session, keys: AuditKeys, anchors: Sequence[str] = ()) -> Verification:
    """Walk the chain; name the first entry that is edited, out of place, inserted, or
    missing (a deleted entry shows as a gap, a cut-off tail against the head and against
    the newest checkpoint).

    The walk starts at the first entry, or, where entries were purged, at the newest
    checkpoint before the first entry kept: the one signed for the last entry purged. Every
    checkpoint must carry a valid signature under one of `keys` and match the entry it names.

    `anchors` are the lines read back from the anchor sink, read before the walk (an anchor
    written during it would name entries the walk has not seen). Each must hold an anchor
    signed under one of `keys`' anchor keys, and each anchored entry must still be there with
    the hash its anchor names: a chain recomputed after an edit, or cut short with the head
    moved back, shows against them. Anchors of purged entries are skipped.
    """
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    checkpoints = {c.seq: c for c in session.scalars(select(AuditCheckpoint))}
    for seq in sorted(checkpoints):
        if not keys.vouches_for(checkpoints[seq]):
            return Verification(
                False,
                0,
                seq,
                f"the checkpoint for entry {seq} is not signed by a known audit key",
            )
    signed = _signed_anchors(anchors, keys)
    if isinstance(signed, Verification):
        return signed
    first = session.scalar(select(func.min(AuditEntry.seq))) or head.seq + 1
    behind = checkpoints.get(max((seq for seq in checkpoints if seq < first), default=0))
    expected_seq, prev_hash = (behind.seq + 1, behind.hash) if behind else (1, GENESIS_HASH)
    anchored: dict[int, list[Anchor]] = {}
    for anchor in signed:
        if anchor.seq >= first:
            anchored.setdefault(anchor.seq, []).append(anchor)
    start, matched, seen = expected_seq, None, 0
    after = expected_seq - 1
    while True:
        chunk = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(_CHUNK)
        ).all()
        for entry in chunk:
            problem = _link_problem(entry, expected_seq, prev_hash, checkpoints.get(entry.seq))
            if problem is not None:
                return Verification(False, seen, expected_seq, problem, matched)
            rewritten = [a for a in anchored.get(entry.seq, ()) if a.hash != entry.hash]
            if rewritten:
                # Nothing tells which entries since the newest anchor that matches were changed.
                bad = start if matched is None else matched + 1
                return Verification(False, seen, bad, _rewritten(rewritten[0], bad), matched)
            if entry.seq in anchored:
                matched = entry.seq
            expected_seq, prev_hash, seen = expected_seq + 1, entry.hash, seen + 1
        if len(chunk) < _CHUNK:
            break
        after = chunk[-1].seq
    last = expected_seq - 1
    if head.seq != last or head.hash != prev_hash:
        return Verification(
            False,
            seen,
            last + 1,
            f"the log ends at entry {last} but the head says {head.seq}",
            matched,
        )
    if checkpoints and max(checkpoints) > last:
        return Verification(
            False,
            seen,
            last + 1,
            f"the log ends at entry {last} but a signed checkpoint names entry {max(checkpoints)}",
            matched,
        )
    newest = max(anchored, default=0)
    if newest > last:
        return Verification(
            False,
            seen,
            last + 1,
            f"the log ends at entry {last} but the anchor of {_when(anchored[newest][0])} "
            f"names entry {newest}",
            matched,
        )
    return Verification(True, seen, anchored_seq=matched)


def _signed_anchors(lines: Sequence[str], keys: AuditKeys) -> list[Anchor] | Verification:
    """The anchors in the lines; or, where one line holds none or one not signed under a
    known anchor key, the verdict: a broken sink is a broken log."""
    signed = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            anchor = Anchor.parse(line)
        except ValueError:
            return Verification(False, 0, None, f"line {number} of the audit anchors is no anchor")
        if not keys.vouches_for_anchor(anchor):
            return Verification(
                False,
                0,
                anchor.seq,
                f"the anchor of entry {anchor.seq} (line {number} of the audit anchors) is not "
                "signed by a known audit anchor key",
            )
        signed.append(anchor)
    return signed


def _when(anchor: Anchor) -> str:
    return anchor.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _rewritten(anchor: Anchor, first_bad: int) -> str:
    return (
        f"entry {anchor.seq} is not the entry anchored at {_when(anchor)}: the log was "
        f"rewritten after it was anchored, from entry {first_bad} on"
    )


def _link_problem(
    entry: AuditEntry, expected_seq: int, prev_hash: str, signed: AuditCheckpoint | None
) -> str | None:
    if entry.seq != expected_seq:
        return f"entry {expected_seq} is missing or out of place"
    if entry.prev_hash != prev_hash:
        return f"entry {entry.seq} does not follow the entry before it"
    if chain_hash(prev_hash, entry) != entry.hash:
        return f"entry {entry.seq} was changed after it was written"
    if signed is not None and signed.hash != entry.hash:
        return f"entry {entry.seq} is not the entry its signed checkpoint names"
    return None
