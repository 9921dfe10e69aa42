"""One-time activation codes: how a person's new or reset account gets its own password and
second factor without an administrator ever learning either. Stored only as a hash."""

from __future__ import annotations

import base64
import secrets

# 15 random bytes: 120 bits, as 24 base32 letters and digits in groups a person can type.
_CODE_BYTES = 15
_GROUP = 4


def new_activation_code() -> str:
    letters = base64.b32encode(secrets.token_bytes(_CODE_BYTES)).decode()
    return "-".join(letters[i : i + _GROUP] for i in range(0, len(letters), _GROUP))


def canonical_code(code: str) -> str:
    """A code as typed, in the form it is hashed in: case, spaces and hyphens do not count."""
    return "".join(code.split()).replace("-", "").upper()
