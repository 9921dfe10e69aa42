"""The append-only audit log: every access and change, with the CJIS fields (time, component,
event type, actor, outcome, object id), each entry chained to the one before by SHA-256.

Entries hold identifiers only (account:7, request:12), never a template, a photo or an
identity field. An entry is written in the same transaction as the change it records.

Every state-changing request writes exactly one entry: its route writes it, and a refusal
raised before the route could (a missing token, an invalid body) is written by the error
handlers, through the request's audit scope.

Checkpoints sign an entry's hash with Ed25519. Entries older than the retention period are
deleted only behind one (`app.retention`), and the chain then verifies from it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.errors import ApiError
from app.models import AuditCheckpoint, AuditEntry, AuditHead
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


def _key_bytes(text: str, what: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            f"an audit {what} is 32 bytes in URL-safe base64 (facematch audit new-key)"
        )
    return raw


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def public_key_text(key: Ed25519PublicKey) -> str:
    return _text(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def new_signing_key() -> str:
    """A fresh signing key, as FACEMATCH_AUDIT_SIGNING_KEY takes it."""
    return _text(Ed25519PrivateKey.generate().private_bytes_raw())


def read_signing_key(text: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_key_bytes(text, "signing key"))


def read_verify_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_key_bytes(text, "verify key"))


def _key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def _signed_message(seq: int, entry_hash: str, signed_at: datetime) -> bytes:
    at = signed_at.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(["facematch audit checkpoint", seq, entry_hash, at]).encode()


class AuditKeys:
    """The key that signs checkpoints, if this process holds one, and every public key a
    checkpoint may have been signed under (the signing key's own, and retired ones)."""

    def __init__(
        self, signing: Ed25519PrivateKey | None, verifying: Sequence[Ed25519PublicKey] = ()
    ) -> None:
        self.signing = signing
        public = [*verifying, *([signing.public_key()] if signing else [])]
        self._verifying = {_key_id(key): key for key in public}

    def sign(self, seq: int, entry_hash: str) -> AuditCheckpoint:
        if self.signing is None:
            raise ValueError("no audit signing key is held")
        at = datetime.now(UTC)
        return AuditCheckpoint(
            seq=seq,
            hash=entry_hash,
            signed_at=at,
            key_id=_key_id(self.signing.public_key()),
            signature=self.signing.sign(_signed_message(seq, entry_hash, at)).hex(),
        )

    def vouches_for(self, checkpoint: AuditCheckpoint) -> bool:
        key = self._verifying.get(checkpoint.key_id)
        if key is None:
            return False
        message = _signed_message(checkpoint.seq, checkpoint.hash, checkpoint.signed_at)
        try:
            key.verify(bytes.fromhex(checkpoint.signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True


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


def verify(session: Session, keys: AuditKeys) -> Verification:
    """Walk the chain; name the first entry that is edited, out of place, inserted, or
    missing (a deleted entry shows as a gap, a cut-off tail against the head and against
    the newest checkpoint).

    The walk starts at the first entry, or, where entries were purged, at the newest
    checkpoint before the first entry kept: the one signed for the last entry purged. Every
    checkpoint must carry a valid signature under one of `keys` and match the entry it names.
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
    first = session.scalar(select(func.min(AuditEntry.seq))) or head.seq + 1
    anchor = checkpoints.get(max((seq for seq in checkpoints if seq < first), default=0))
    expected_seq, prev_hash = (anchor.seq + 1, anchor.hash) if anchor else (1, GENESIS_HASH)
    seen = 0
    after = expected_seq - 1
    while True:
        chunk = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(_CHUNK)
        ).all()
        for entry in chunk:
            problem = _link_problem(entry, expected_seq, prev_hash, checkpoints.get(entry.seq))
            if problem is not None:
                return Verification(False, seen, expected_seq, problem)
            expected_seq, prev_hash, seen = expected_seq + 1, entry.hash, seen + 1
        if len(chunk) < _CHUNK:
            break
        after = chunk[-1].seq
    last = expected_seq - 1
    if head.seq != last or head.hash != prev_hash:
        return Verification(
            False, seen, last + 1, f"the log ends at entry {last} but the head says {head.seq}"
        )
    if checkpoints and max(checkpoints) > last:
        return Verification(
            False,
            seen,
            last + 1,
            f"the log ends at entry {last} but a signed checkpoint names entry {max(checkpoints)}",
        )
    return Verification(True, seen)


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
