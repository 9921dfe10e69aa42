"""TOTP second factor (RFC 6238, via pyotp): 30-second steps, one step of clock drift either
way, and each step's code usable once."""

from __future__ import annotations

from datetime import datetime

import pyotp

_DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def accepted_step(secret: str, code: str, last_step: int | None, now: datetime) -> int | None:
    """The time step `code` belongs to, if it is valid now and newer than the last one used."""
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in range(step - _DRIFT_STEPS, step + _DRIFT_STEPS + 1):
        if (last_step is None or candidate > last_step) and pyotp.utils.strings_equal(
            code.strip(), totp.generate_otp(candidate)
        ):
            return candidate
    return None
