"""Face templates sealed at rest with AES-GCM: each template in the database, and the saved
index files, under a key from configuration.

A sealed value carries the id of the key that sealed it, so a key rotation can run while
the service reads both the old key's values and the new key's. The associated data names
what the value is (which photo's template, which model's index), so a template copied onto
another row, or one index file put in place of another, does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_VERSION = b"\x01"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_HEADER = len(_VERSION) + _KEY_ID_BYTES
# Files are sealed in chunks: AES-GCM takes at most 2 GiB a call, and a chunk at a time
# keeps memory to one chunk beyond the data itself.
FILE_CHUNK = 64 * 2**20
_LENGTH_BYTES = 4
_FRAME = _NONCE_BYTES + _LENGTH_BYTES + 1  # nonce, length, last-chunk flag


class SealingError(Exception):
    """A sealed value could not be opened: changed, moved, or sealed under a key not held."""


def new_key() -> str:
    """A fresh key, as FACEMATCH_TEMPLATE_KEY takes it (URL-safe base64 of 32 bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def read_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ValueError(
            "a template key is 32 random bytes in URL-safe base64 (facematch keys new)"
        )
    return key


def key_file(path: Path) -> str:
    """The key kept in `path`, made there (readable by its owner only) the first time."""
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(new_key())
    except FileExistsError:
        pass
    return path.read_text()


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"facematch template key id\0" + key).digest()[:_KEY_ID_BYTES]


class TemplateKeys:
    """The current key, which seals, and earlier ones, which only open: a rotation re-seals
    everything under the current key, after which the earlier ones can be dropped."""

    def __init__(self, current: bytes, earlier: Sequence[bytes] = ()) -> None:
        self._given = (current, tuple(earlier))
        self.current_id = _key_id(current)
        self._current = AESGCM(current)
        self._keys = {_key_id(key): AESGCM(key) for key in (*earlier, current)}

    def __reduce__(self) -> tuple[type[TemplateKeys], tuple[bytes, tuple[bytes, ...]]]:
        # To the encoding workers of a distributed enrolment, which seal what they write.
        return TemplateKeys, self._given

    @classmethod
    def from_text(cls, current: str, earlier: Sequence[str] = ()) -> TemplateKeys:
        return cls(read_key(current), [read_key(key) for key in earlier])

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """Version, key id, nonce, then the ciphertext and its tag."""
        header = _VERSION + self.current_id
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + self._current.encrypt(nonce, plaintext, header + context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        header, nonce = sealed[:_HEADER], sealed[_HEADER : _HEADER + _NONCE_BYTES]
        return _decrypt(
            self._cipher(header), nonce, sealed[_HEADER + _NONCE_BYTES :], header + context.encode()
        )

    def is_current(self, sealed: bytes) -> bool:
        return sealed[:_HEADER] == _VERSION + self.current_id

    def seal_file(self, data: memoryview, context: str) -> Iterator[bytes]:
        """The pieces of a sealed file: a header, then each chunk framed by its nonce, its
        length and whether it is the last. A chunk's associated data holds its number and
        that flag, so chunks cannot be reordered, dropped or cut off unnoticed."""
        header = _VERSION + self.current_id
        yield header
        starts = range(0, max(len(data), 1), FILE_CHUNK)
        for number, start in enumerate(starts):
            nonce, last = os.urandom(_NONCE_BYTES), number == len(starts) - 1
            sealed = self._current.encrypt(
                nonce, data[start : start + FILE_CHUNK], _chunk_data(header, context, number, last)
            )
            yield nonce + len(sealed).to_bytes(_LENGTH_BYTES) + bytes([last]) + sealed

    def open_file(self, handle: BinaryIO, context: str) -> bytearray:
        header = handle.read(_HEADER)
        cipher = self._cipher(header)
        opened = bytearray()
        number, last = 0, False
        while not last:
            frame = handle.read(_FRAME)
            if len(frame) < _FRAME:
                raise SealingError("the sealed file is cut off")
            nonce, length, last = frame[:_NONCE_BYTES], frame[_NONCE_BYTES:-1], frame[-1] == 1
            associated = _chunk_data(header, context, number, last)
            opened += _decrypt(cipher, nonce, handle.read(int.from_bytes(length)), associated)
            number += 1
        if handle.read(1):
            raise SealingError("the sealed file goes on after its last chunk")
        return opened

    def _cipher(self, header: bytes) -> AESGCM:
        if header[:1] != _VERSION or len(header) != _HEADER:
            raise SealingError("the value is not sealed in a form this version knows")
        cipher = self._keys.get(header[1:])
        if cipher is None:
            raise SealingError("the value was sealed under a key that is not configured")
        return cipher


def _decrypt(cipher: AESGCM, nonce: bytes, sealed: bytes, associated: bytes) -> bytes:
    try:
        return cipher.decrypt(nonce, sealed, associated)
    except (InvalidTag, ValueError):
        raise SealingError("the sealed value was changed, or belongs elsewhere") from None


def _chunk_data(header: bytes, context: str, number: int, last: bool) -> bytes:
    return header + context.encode() + number.to_bytes(8) + bytes([last])
