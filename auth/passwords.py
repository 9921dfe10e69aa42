"""Passwords and client secrets: Argon2id hashing (argon2-cffi's defaults, RFC 9106), and the
password policy of NIST SP 800-63B: long enough, any characters, no composition rules, and
never one that is common, breached or easy to guess (zxcvbn's lists and estimate)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
# zxcvbn's estimate reads at most this many characters; a longer password is judged by them.
_ESTIMATED_CHARACTERS = 72
# zxcvbn's score: 3 is "safely unguessable: moderate protection from offline slow-hash
# attacks" (about 10^8 guesses and more).
_MIN_SCORE = 3
# The 30,000 most common passwords of the breach corpora zxcvbn ships.
_COMMON = frozenset(FREQUENCY_LISTS["passwords"])

_hasher = PasswordHasher()
# Verified against when the account does not exist or has no password, so a sign-in takes
# as long either way.
_UNKNOWN = _hasher.hash("no account has this password")


def password_problem(password: str, *context: str) -> str | None:
    """Why a password may not be used, in a sentence, or None if it may. `context` holds
    words an attacker would try first: the username, the service's name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password has at most {MAX_PASSWORD_LENGTH} characters"
    folded = password.casefold()
    if folded in _COMMON or "".join(folded.split()) in _COMMON:
        return "that password is one of the most common ones in breached password lists"
    if any(word and word.casefold() in folded for word in context):
        return "a password may not contain your username or the service's name"
    estimate = zxcvbn(password[:_ESTIMATED_CHARACTERS], user_inputs=list(context))
    if estimate["score"] < _MIN_SCORE:
        return "that password is too easy to guess (a common word, name, date or pattern)"
    return None


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Whether `secret` matches; with no stored hash, the same work and False."""
    try:
        return _hasher.verify(stored_hash or _UNKNOWN, secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
