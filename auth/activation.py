"""One-time activation codes: how a person's new or reset account gets its own password and
second factor without an administrator ever learning either. Stored only as hashes.

A code is two halves of 60 bits, each 12 base32 letters and digits in groups of four a
person can type: the administrator who asks for the account is shown the first, the one who
approves it the second, and only the person, given both, holds the whole code.
"""

from __future__ import annotations

import secrets
import string

_HALF_LETTERS = 12
_GROUP = 4
_ALPHABET = string.ascii_uppercase + "234567"  # base32's: no 0, 1, 8 or 9 to misread


def new_code_half() -> str:
    letters = "".join(secrets.choice(_ALPHABET) for _ in range(_HALF_LETTERS))
    return "-".join(letters[i : i + _GROUP] for i in range(0, _HALF_LETTERS, _GROUP))


def canonical_code(code: str) -> str:
    """A code or half as typed, in the form it is hashed in: case, spaces and hyphens do not
    count."""
    return "".join(code.split()).replace("-", "").upper()


def code_halves(code: str) -> tuple[str, str]:
    """The two halves of a whole code as typed (either may come out empty or short)."""
    canonical = canonical_code(code)
    return canonical[:_HALF_LETTERS], canonical[_HALF_LETTERS:]
