"""The append-only audit log: every access and change, with the CJIS fields (time, component,
event type, actor, outcome, object id), each entry chained to the one before by SHA-256.

Entries hold identifiers only (account:7, request:12), never a template, a photo or an
identity field. An entry is written in the same transaction as the change it records.

Every state-changing request writes exactly one entry: its route writes it, and a refusal
raised before the route could (a missing token, an invalid body) is written by the error
handlers, through the request's audit scope.

Checkpoints sign an entry's hash with Ed25519. Entries older than the retention period are
deleted only behind one (`app.retention`), and the chain then verifies from it.

Anchors sign the head with a key the database never holds, and are kept outside it
(`app.anchors`): whoever can write the database can recompute the chain and its head, but
cannot rewrite or cut off anchored entries unseen.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
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


def _signed_message(
    seq: int, entry_hash: str, signed_at: datetime, kind: str = "checkpoint"
) -> bytes:
    """What a checkpoint or an anchor signs: each kind under its own prefix, so that neither
    signature can stand for the other."""
    at = signed_at.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps([f"facematch audit {kind}", seq, entry_hash, at]).encode()


@dataclass(frozen=True)
class Anchor:
    """A signed statement, kept outside the database, that the log's head was entry `seq`
    with hash `hash` at `at`: one JSON line in the anchor sink."""

    seq: int
    hash: str
    at: datetime
    key_id: str
    signature: str

    def line(self) -> str:
        at = self.at.astimezone(UTC).isoformat(timespec="microseconds")
        fields = {"seq": self.seq, "hash": self.hash, "at": at, "key_id": self.key_id}
        return json.dumps(fields | {"signature": self.signature}, separators=(",", ":"))

    @classmethod
    def parse(cls, line: str) -> Anchor:
        """The anchor a line holds; ValueError if it holds none."""
        try:
            fields = json.loads(line)
        except RecursionError:
            fields = None
        if not isinstance(fields, dict) or set(fields) != set(cls.__dataclass_fields__):
            raise ValueError("not an audit anchor")
        seq, entry_hash, at = fields["seq"], fields["hash"], fields["at"]
        key_id, signature = fields["key_id"], fields["signature"]
        texts = (entry_hash, at, key_id, signature)
        if type(seq) is not int or seq < 1 or not all(isinstance(t, str) for t in texts):
            raise ValueError("not an audit anchor")
        signed_at = datetime.fromisoformat(at)
        if signed_at.tzinfo is None:
            raise ValueError("not an audit anchor")
        return cls(seq, entry_hash, signed_at, key_id, signature)


class AuditKeys:
    """The keys that sign checkpoints and anchors, where this process holds them, and every
    public key either may have been signed under: the key's own, and retired ones. Each
    kind is checked under its own key and its own retired ones only, so that the anchor key,
    which the service holds, cannot sign the checkpoint a purge deletes entries behind."""

    def __init__(
        self,
        signing: Ed25519PrivateKey | None,
        verifying: Sequence[Ed25519PublicKey] = (),
        anchoring: Ed25519PrivateKey | None = None,
        anchor_verifying: Sequence[Ed25519PublicKey] = (),
    ) -> None:
        self.signing = signing
        self.anchoring = anchoring
        public = [*verifying, *([signing.public_key()] if signing else [])]
        self._verifying = {_key_id(key): key for key in public}
        anchor_public = [*anchor_verifying, *([anchoring.public_key()] if anchoring else [])]
        self._anchor_verifying = {_key_id(key): key for key in anchor_public}

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
        message = _signed_message(checkpoint.seq, checkpoint.hash, checkpoint.signed_at)
        return _holds(self._verifying, checkpoint.key_id, checkpoint.signature, message)

    def anchor(self, seq: int, entry_hash: str) -> Anchor:
        if self.anchoring is None:
            raise ValueError("no audit anchor key is held")
        at = datetime.now(UTC)
        signature = self.anchoring.sign(_signed_message(seq, entry_hash, at, "anchor"))
        return Anchor(seq, entry_hash, at, _key_id(self.anchoring.public_key()), signature.hex())

    def vouches_for_anchor(self, anchor: Anchor) -> bool:
        message = _signed_message(anchor.seq, anchor.hash, anchor.at, "anchor")
        return _holds(self._anchor_verifying, anchor.key_id, anchor.signature, message)


def _holds(
    keys: Mapping[str, Ed25519PublicKey], key_id: str, signature: str, message: bytes
) -> bool:
    key = keys.get(key_id)
    if key is None:
        return False
    try:
        key.verify(bytes.fromhex(signature), message)
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
