"""A token cache shared by every process using one store: one OAuth call per token lifetime.

:class:`SharedTokenCache` has the interface of :class:`gigachat_lite.auth.TokenCache`
(``get(key, fetch, margin)``, ``peek``, ``invalidate``, ``clear``), so
``TokenAuth(cache=...)`` takes either. Keys are the same
``(auth_url, api_key, scope)`` tuples; they are turned into a
:class:`~.keys.FleetKey` before anything reaches the store.

Two layers:

1. In the process, an ordinary :class:`TokenCache` keyed by the FleetKey: a
   fresh token costs no store round trip, and the threads of one process
   collapse into one caller (sharing its error, as today).
2. Across processes, that one caller reads the store; if the token there is
   missing or stale it takes the fetch lock (``add`` with a TTL), re-reads,
   fetches, writes, and drops the lock. Others poll the token entry every
   10-200 ms until it appears or the lock is free to take. A holder that dies
   holds the lock ``lock_ttl`` seconds at most; a holder whose fetch fails
   drops it, and the next caller tries on its own.

What the store holds, per identity (``XXX`` = PERS, B2B or CORP,
``<digest>`` = SHA-256 of auth URL, key and scope, see :mod:`.keys`):

* ``tok.XXX.<digest>``: JSON ``{"access_token": ..., "expires_at": s,
  "obtained_at": s}``, with a TTL equal to the token's remaining lifetime;
  the token itself, and nothing that reveals the key;
* ``lock.XXX.<digest>``: a random owner id (no meaning outside), TTL
  ``lock_ttl`` (30 s by default), present only while a fetch is under way;
* ``oauth.rate``: the OAuth calls of the last second (hit times), when a
  rate guard is given.

Whoever can read the store can use the token until it expires (30 minutes
for GigaChat): protect the store as you would the token.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
import weakref
from typing import Callable, Hashable, Optional

from ..auth import Token, TokenCache
from .keys import FleetKey, fleet_key
from .store import Store
from .throttle import OAuthRateGuard

__all__ = ["SharedTokenCache"]


def _encode(token: Token) -> str:
    return json.dumps({"access_token": token.value, "expires_at": token.expires_at, "obtained_at": token.obtained_at})


def _decode(raw: Optional[str]) -> Optional[Token]:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Token(str(data["access_token"]), float(data["expires_at"]), float(data["obtained_at"]))
    except (ValueError, KeyError, TypeError):
        return None  # a garbled entry is a missing one: the next fetch replaces it


class SharedTokenCache:
    """Tokens shared through ``store`` by every process and host that opens it.

    Args:
        store: where tokens and fetch locks live.
        lock_ttl: seconds a fetch lock lives if its holder dies; keep it above
            the OAuth call's timeout, or a slow fetch may be duplicated.
        rate_guard: if given, every OAuth fetch first waits for its budget.
    """

    def __init__(self, store: Store, *, lock_ttl: float = 30.0, rate_guard: Optional[OAuthRateGuard] = None) -> None:
        self.store = store
        self._lock_ttl = lock_ttl
        self._guard = rate_guard
        self._local = TokenCache()
        self.fetches = 0  # OAuth calls made by this process through this cache (for tests and figures)
        self._count_lock = threading.Lock()
        _LIVE.add(self)

    def _after_fork(self) -> None:
        # A parent thread fetching a token at the fork held its slot's lock: the child would wait on it for ever.
        self._local.after_fork()
        self._count_lock = threading.Lock()

    def get(self, key: Hashable, fetch: Callable[[], Token], margin: float) -> Token:
        """The fleet's token if fresh, else one fetched by exactly one caller in the fleet."""
        fleet = fleet_key(key)
        return self._local.get(fleet, lambda: self._fleet_get(fleet, fetch, margin), margin)

    def peek(self, key: Hashable) -> Optional[Token]:
        """The token in use now (this process's copy, else the store's), without fetching."""
        fleet = fleet_key(key)
        return self._local.peek(fleet) or _decode(self.store.get(fleet.name("tok")))

    def invalidate(self, key: Hashable, value: str) -> None:
        """Drop the token ``value`` here and in the store, if it is still the current one."""
        fleet = fleet_key(key)
        self._local.invalidate(fleet, value)
        name = fleet.name("tok")
        raw = self.store.get(name)
        current = _decode(raw)
        if raw is not None and current is not None and current.value == value:
            self.store.delete(name, expected=raw)  # compare-and-delete: a newer token is kept

    def clear(self) -> None:
        """Forget this process's copies; the store's tokens stay valid for the fleet."""
        self._local.clear()

    def _fleet_get(self, fleet: FleetKey, fetch: Callable[[], Token], margin: float) -> Token:
        name, lock = fleet.name("tok"), fleet.name("lock")
        owner = uuid.uuid4().hex
        pause = 0.01
        while True:
            token = _decode(self.store.get(name))
            if token is not None and token.fresh(margin):
                return token
            if self.store.add(lock, owner, self._lock_ttl):
                try:
                    return self._fetch_locked(name, fetch, margin)
                finally:
                    self.store.delete(lock, expected=owner)
            # Someone else is fetching: wait for the token to appear, or for the
            # lock to be dropped (fetch failed) or to expire (holder died).
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 1.5, 0.2)

    def _fetch_locked(self, name: str, fetch: Callable[[], Token], margin: float) -> Token:
        # Re-read under the lock: a fetch may have ended between our read and the lock.
        token = _decode(self.store.get(name))
        if token is not None and token.fresh(margin):
            return token
        if self._guard is not None:
            self._guard.wait(time.monotonic() + self._lock_ttl / 2)
        token = fetch()
        with self._count_lock:
            self.fetches += 1
        ttl = token.expires_at - time.time()
        if ttl > 0:
            self.store.set(name, _encode(token), ttl)
        return token


_LIVE: "weakref.WeakSet[SharedTokenCache]" = weakref.WeakSet()


def _after_fork() -> None:
    for cache in list(_LIVE):
        cache._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
