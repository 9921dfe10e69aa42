"""Account lockout after repeated failed sign-ins: `max_failures` in a row lock the account
for `lock_for`, and the count restarts, so the next lock needs as many failures again. The
count itself is kept in the database, one failure added per statement (app.accounts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    lock_for: timedelta = timedelta(minutes=15)


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until
