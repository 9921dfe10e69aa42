"""Short-lived signed access tokens (JWT, HS256, via PyJWT).

A token says who (subject), which role, whether the second factor was used, whether the
subject is a person or a system, and the account's token epoch when it was made. It is
checked against the account on every request too: disabling, enabling or resetting an
account, or changing its password, moves the epoch on, and every older token stops working.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt
from zxcvbn import zxcvbn

from auth.roles import Role

ALGORITHM = "HS256"
ISSUER = "facematch"
MIN_KEY_LENGTH = 32
# Keys that appear in examples and templates: refused outside development.
KNOWN_DEFAULT_KEYS = frozenset({"", "secret", "changeme", "change-me", "changethis", "development"})
# A key a person made up ("aaaa…", "my-super-secret-jwt-key", "changeme" repeated) is refused
# by zxcvbn's estimate of the guesses it takes: 10^30 is about 100 bits; a random key such as
# `secrets.token_urlsafe(32)` estimates at 10^43. zxcvbn reads at most 72 characters.
MIN_KEY_GUESSES_LOG10 = 30
_KEY_CHARACTERS_JUDGED = 72
# A long phrase clears any count of guesses ("replace-this-with-a-long-random-secret..."):
# a key whose characters are a quarter or more words, names, dates, sequences or keyboard
# runs of four or more (zxcvbn's matches) is made up, not random.
_MAX_WORDS_SHARE = 0.25
_SHORTEST_WORD = 4


def _low_variety(key: str) -> bool:
    judged = key[:_KEY_CHARACTERS_JUDGED]
    estimate = zxcvbn(judged)
    words = sum(
        len(match["token"])
        for match in estimate["sequence"]
        if match["pattern"] != "bruteforce" and len(match["token"]) >= _SHORTEST_WORD
    )
    return estimate["guesses_log10"] < MIN_KEY_GUESSES_LOG10 or words >= _MAX_WORDS_SHARE * len(
        judged
    )


class SubjectKind(StrEnum):
    person = "person"
    system = "system"


class TokenError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Claims:
    subject: int
    role: Role
    kind: SubjectKind
    mfa: bool
    epoch: int
    expires_at: datetime


def signing_key_problem(key: str | None) -> str | None:
    """Why a key must not sign tokens outside development, or None if it may."""
    if key is None or key.strip().lower() in KNOWN_DEFAULT_KEYS:
        return "no signing key is configured (FACEMATCH_JWT_KEY), or it is a well-known default"
    if len(key) < MIN_KEY_LENGTH:
        return f"the signing key (FACEMATCH_JWT_KEY) is shorter than {MIN_KEY_LENGTH} characters"
    if _low_variety(key):
        return (
            "the signing key (FACEMATCH_JWT_KEY) is of low variety (repeated, sequential or "
            "made of words): make one with `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`"
        )
    return None


def development_key() -> str:
    return secrets.token_urlsafe(MIN_KEY_LENGTH)


class TokenIssuer:
    def __init__(self, key: str, lifetime: timedelta) -> None:
        self._key = key
        self.lifetime = lifetime

    def issue(
        self,
        subject: int,
        role: Role,
        kind: SubjectKind,
        mfa: bool,
        epoch: int,
        now: datetime | None = None,
    ) -> str:
        now = now or datetime.now(UTC)
        claims = {
            "iss": ISSUER,
            "sub": str(subject),
            "roles": [role.value],
            "kind": kind.value,
            "mfa": mfa,
            "epoch": epoch,
            "iat": int(now.timestamp()),
            "exp": int((now + self.lifetime).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def read(self, token: str) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "sub", "epoch"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token_expired", "The access token has expired; sign in again.")
        except jwt.InvalidTokenError:
            raise TokenError("invalid_token", "The access token is not valid.") from None
        try:
            [role] = claims["roles"]
            return Claims(
                subject=int(claims["sub"]),
                role=Role(role),
                kind=SubjectKind(claims["kind"]),
                mfa=claims["mfa"] is True,
                epoch=int(claims["epoch"]),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except (KeyError, TypeError, ValueError):
            raise TokenError("invalid_token", "The access token is not valid.") from None
