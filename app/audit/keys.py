"""The audit log's Ed25519 keys: the checkpoint key, whose signature lets a purge delete the
entries behind it, and the anchor key, with which the service signs the head it sends out of
the database. Each kind of signature holds only under its own keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.audit.models import AuditCheckpoint


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
