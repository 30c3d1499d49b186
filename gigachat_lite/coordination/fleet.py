"""One object per store that bundles the fleet policies a Session needs.

How the core uses it (:mod:`gigachat_lite.session`, lazily, only when
``coordination`` is set):

* ``Config`` gains ``coordination`` (``GIGACHAT_COORDINATION``, validated by
  :func:`~.opener.check_store_url` before any network call),
  ``coordination_fallback`` and ``max_concurrency``. Unset, nothing below
  runs: today's behaviour, at no cost.
* ``Session.__init__`` takes ``coordination_for(config.coordination, ...)``
  and :func:`identity` of its key, and passes ``.tokens`` as
  ``TokenAuth(cache=...)``: single-flight OAuth across the fleet, behind the
  OAuth rate guard.
* ``Session.send_chat`` passes ``.files`` (:class:`~.files.SharedFileIds`) and
  the identity to the upload of a message's files: one upload per distinct
  file for the fleet, its id kept beside the token.
* ``Session.call``, before sending: :meth:`Coordination.take_slot` (the
  cool-down, then a lease, both within the call's timeout). A non-streamed
  reply releases the lease as soon as it is read; a streamed one hands it to
  ``ChatStream``, which releases it however the stream ends. Every error path
  releases it.
* The 429 hook (``retry.GigaChatRetry.increment``) calls :meth:`Coordination.share_cool_down`
  at each 429 with ``Retry-After``, so the other workers pause at once, for
  ``max_cool_down`` seconds at most (``GIGACHAT_MAX_COOL_DOWN``, 30 by default).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Dict, Hashable, Optional, Tuple

from ..config import DEFAULT_MAX_COOL_DOWN
from .errors import CoordinationError
from .files import SharedFileIds
from .keys import FleetKey, fleet_key
from .limiter import Cancel, ConcurrencyLimiter, Lease
from .opener import check_store_url, open_store, process_store
from .store import Store
from .throttle import CoolDown, OAuthRateGuard
from .tokens import SharedTokenCache

__all__ = ["Coordination", "coordination_for", "close_all", "identity"]

log = logging.getLogger("gigachat_lite.coordination")


def identity(auth_url: str, api_key: Optional[str], access_token: Optional[str], scope: str) -> FleetKey:
    """The :class:`FleetKey` a session's calls count against.

    The key's, when there is one. A token-only session knows no key: the
    token's SHA-256 digest (never the token) stands for it, so sessions
    sharing the token share the slots.
    """
    if api_key:
        return fleet_key((auth_url, api_key, scope))
    if not access_token:
        raise ValueError("a coordinated session needs an api_key or an access_token")
    digest = hashlib.sha256(access_token.encode("utf-8")).hexdigest()
    return fleet_key((auth_url, "access-token:" + digest, scope))


class Coordination:
    """The shared token cache and file ids, the concurrency limiter, the cool-down and the OAuth guard of one store.

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
        self.files = SharedFileIds(store)
        self.limiter = ConcurrencyLimiter(store, limit=limit, ttl=lease_ttl)
        self.cooldown = CoolDown(store)

    def take_slot(self, key: Hashable, timeout: float, cancel: Optional[Cancel] = None) -> Lease:
        """Wait out ``key``'s cool-down, then for a slot, ``timeout`` seconds in all; return the lease.

        ``cancel``, the call's cancel scope, ends the wait for a slot at once
        when it fires (see :meth:`ConcurrencyLimiter.acquire`).

        Raises:
            RateLimitError: the cool-down outlasts ``timeout``.
            ConcurrencyLimitTimeout: no slot freed up in time.
            CoordinationError: the store failed.
        """
        deadline = time.monotonic() + timeout
        self.cooldown.wait_cooldown(key, deadline)
        return self.limiter.acquire(key, timeout=max(deadline - time.monotonic(), 0.0), cancel=cancel)

    def share_cool_down(self, key: Hashable, seconds: float, *, cap: float = DEFAULT_MAX_COOL_DOWN) -> None:
        """Ask the fleet to pause ``key`` for ``seconds`` (a 429's ``Retry-After``), ``cap`` at most; never raises.

        The cap (``max_cool_down``) keeps one 429 asking for a day from
        stopping every worker, new ones included, for a day after the server
        recovered: the fleet pauses ``cap`` seconds, then one call finds out
        (and, refused again, pauses the fleet again). The caller that met the
        429 still gets the server's whole ``Retry-After`` in its error.
        """
        pause = min(seconds, cap)
        if pause < seconds:
            log.info("a 429 asked for %.0f s; the fleet pauses %.0f s (max_cool_down)", seconds, pause)
        try:
            self.cooldown.cool_down(key, pause)
        except CoordinationError as exc:  # the pause is advice to the others; this call goes on
            log.warning("could not share a 429 cool-down: %s", exc)

    def __repr__(self) -> str:
        return f"<Coordination {self.store.url}>"


#: Seconds a killed worker's slot stays taken (its lease's TTL, renewed every third of it while
#: held). Lower it before the first call to free dead workers' slots sooner, at more store traffic.
LEASE_TTL = 10.0

_OPEN: Dict[Tuple[Optional[str], bool, Optional[int]], Coordination] = {}
_OPEN_LOCK = threading.Lock()


def coordination_for(url: Optional[str], *, fallback: bool = False, limit: Optional[int] = None) -> Coordination:
    """The process's :class:`Coordination` for this setting, opened once and then reused.

    Sessions with the same setting must share one, or the threads of one
    process would not see each other's in-process state.
    """
    checked = check_store_url(url)
    if checked is not None and checked.lower().startswith("memory:"):
        checked = None  # one in-process store, so one Coordination for it however it is named
    key = (checked, fallback, limit)
    with _OPEN_LOCK:
        found = _OPEN.get(key)
        if found is None:
            found = _OPEN[key] = Coordination(open_store(url, fallback=fallback), limit=limit, lease_ttl=LEASE_TTL)
        return found


def close_all() -> None:
    """Close every store opened by :func:`coordination_for` and empty the in-process one (tests)."""
    with _OPEN_LOCK:
        for coordination in _OPEN.values():
            coordination.store.close()
        _OPEN.clear()
    process_store().clear()
