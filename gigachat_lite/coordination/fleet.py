"""One object per store that bundles the fleet policies a Session needs.

Phase 2 (wiring into the core) builds one :class:`Coordination` per
``coordination`` setting and hands its parts to the session:
``tokens`` to :class:`~gigachat_lite.auth.TokenAuth` as its ``cache``,
``limiter`` and ``cooldown`` to ``Session.call``, the lease to the stream.
"""

from __future__ import annotations

import threading
from typing import Dict, Optional, Tuple

from .limiter import ConcurrencyLimiter
from .opener import open_store
from .store import Store
from .throttle import CoolDown, OAuthRateGuard
from .tokens import SharedTokenCache

__all__ = ["Coordination", "coordination_for"]


class Coordination:
    """The shared token cache, the concurrency limiter, the cool-down and the OAuth guard of one store.

    Args:
        store: from :func:`open_store`.
        limit: slots per key (``None``: 1 for personal keys, 10 for business).
        lease_ttl: seconds a dead worker's slot stays taken.
        lock_ttl: seconds a dead worker's token-fetch lock stays taken.
        oauth_rate: OAuth calls per second allowed to the whole fleet.
    """

    def __init__(
        self,
        store: Store,
        *,
        limit: Optional[int] = None,
        lease_ttl: float = 10.0,
        lock_ttl: float = 30.0,
        oauth_rate: int = 9,
    ) -> None:
        self.store = store
        self.oauth_guard = OAuthRateGuard(store, rate=oauth_rate)
        self.tokens = SharedTokenCache(store, lock_ttl=lock_ttl, rate_guard=self.oauth_guard)
        self.limiter = ConcurrencyLimiter(store, limit=limit, ttl=lease_ttl)
        self.cooldown = CoolDown(store)

    def __repr__(self) -> str:
        return f"<Coordination {self.store.url}>"


_OPEN: Dict[Tuple[Optional[str], bool, Optional[int]], Coordination] = {}
_OPEN_LOCK = threading.Lock()


def coordination_for(url: Optional[str], *, fallback: bool = False, limit: Optional[int] = None) -> Coordination:
    """The process's :class:`Coordination` for this setting, opened once and then reused.

    Sessions with the same setting must share one, or the threads of one
    process would not see each other's in-process state.
    """
    key = (url or None, fallback, limit)
    with _OPEN_LOCK:
        found = _OPEN.get(key)
        if found is None:
            found = _OPEN[key] = Coordination(open_store(url, fallback=fallback), limit=limit)
        return found
