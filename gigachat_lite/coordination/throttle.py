"""Fleet-wide pacing: the 429 cool-down and the OAuth rate guard.

* :class:`CoolDown`: when any worker gets a 429 with ``Retry-After``, it
  calls ``cool_down(key, seconds)``; every worker calls ``wait_cooldown``
  before sending, and so waits out the rest of that pause instead of
  hammering. Stored as ``cool.XXX.<digest>``, an entry whose only content is
  its TTL (the longer of two cool-downs wins).
* :class:`OAuthRateGuard`: GigaChat's OAuth endpoint allows about 10 calls a
  second. The guard keeps a sliding window of the fleet's OAuth calls
  (``oauth.rate``) and makes a caller wait until one more fits.
"""

from __future__ import annotations

import random
import time
from typing import Hashable, Optional

from ..errors import RateLimitError
from .errors import ConcurrencyLimitTimeout
from .keys import fleet_key
from .store import Store

__all__ = ["CoolDown", "OAuthRateGuard"]


class CoolDown:
    """A per-key pause shared by the fleet after a 429."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def cool_down(self, key: Hashable, seconds: float) -> None:
        """Ask every worker using ``key`` to hold off for ``seconds`` (a longer pause already set is kept)."""
        if seconds > 0:
            self.store.extend(fleet_key(key).name("cool"), seconds)

    def remaining(self, key: Hashable) -> float:
        """Seconds left in ``key``'s cool-down (0.0 if none)."""
        return self.store.remaining(fleet_key(key).name("cool"))

    def wait_cooldown(self, key: Hashable, deadline: Optional[float] = None) -> float:
        """Sleep until ``key``'s cool-down ends; return the seconds slept.

        Args:
            deadline: a :func:`time.monotonic` value the caller must not wait past.

        Raises:
            RateLimitError: the cool-down ends after ``deadline`` (raised at
                once, with ``retry_after`` set, rather than after a useless wait).
        """
        name = fleet_key(key).name("cool")
        slept = 0.0
        while True:
            left = self.store.remaining(name)
            if left <= 0:
                return slept
            if deadline is not None and time.monotonic() + left > deadline:
                raise RateLimitError(
                    f"GigaChat asked this key's workers to wait {left:.1f} s more (429 Retry-After), "
                    "longer than this call may wait",
                    status_code=429,
                    retry_after=left,
                )
            time.sleep(left)
            slept += left


class OAuthRateGuard:
    """At most ``rate`` OAuth calls per ``window`` seconds across the fleet.

    The default, 9 per second, stays under GigaChat's ~10 per second.
    """

    def __init__(self, store: Store, *, rate: int = 9, window: float = 1.0, name: str = "oauth.rate") -> None:
        if rate < 1 or window <= 0:
            raise ValueError("OAuthRateGuard needs rate >= 1 and window > 0")
        self.store = store
        self.rate = rate
        self.window = window
        self._name = name

    def wait(self, deadline: Optional[float] = None) -> float:
        """Block until one more OAuth call fits, record it, return the seconds waited.

        Raises:
            ConcurrencyLimitTimeout: the budget frees up only after ``deadline``
                (a :func:`time.monotonic` value).
        """
        start = time.monotonic()
        while True:
            wait = self.store.rate_hit(self._name, self.rate, self.window)
            if wait <= 0:
                return time.monotonic() - start
            now = time.monotonic()
            if deadline is not None and now + wait > deadline:
                raise ConcurrencyLimitTimeout("the OAuth rate budget", limit=self.rate, waited=now - start)
            # Jitter, so the waiters of many processes do not all retry in the same millisecond.
            time.sleep(wait + random.uniform(0, 0.01))
