"""Per-account rate limits: a flood of sign-ins or searches is refused before it costs a
password hash or a face encoding."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


def parse_rate(rate: str) -> RateLimitItem:
    """ "10/minute", "100 per hour", "5/second;..." as the `limits` library reads them."""
    try:
        return parse(rate)
    except ValueError:
        raise ValueError(f"{rate!r} is not a rate such as '10/minute'") from None


class Throttle:
    """At most `rate` attempts per key in a moving window, counted in this process."""

    def __init__(self, rate: str) -> None:
        self._rate = parse_rate(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def wait_s(self, *key: str | int) -> int | None:
        """Count one attempt; None if it is allowed, else the seconds until one would be."""
        parts = [str(part) for part in key]
        if self._limiter.hit(self._rate, *parts):
            return None
        reset = self._limiter.get_window_stats(self._rate, *parts).reset_time
        return max(1, math.ceil(reset - time.time()))
