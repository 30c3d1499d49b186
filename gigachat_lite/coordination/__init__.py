"""Coordination across threads, processes and hosts that share one GigaChat key.

GigaChat's limits are per key: ~10 OAuth calls a second, 1 request in flight
for a personal key (10 for business scopes), 429 beyond. This package lets
every worker using one key share:

* the access token (:class:`SharedTokenCache`: one OAuth call per lifetime),
* the in-flight limit (:class:`ConcurrencyLimiter` handing out leases, first
  come, first served, to callers waiting in a queue kept in the store),
* the ids of files attached to messages (:class:`SharedFileIds`: one upload
  per distinct file),
* a 429 cool-down (:class:`CoolDown`, capped by ``max_cool_down``) and the
  OAuth rate (:class:`OAuthRateGuard`),

through a :class:`Store` picked by one URL setting (:func:`open_store`):
in-process (default), a folder (``file:///...``) or Redis (``redis://...``).
"""

from __future__ import annotations

from .errors import ConcurrencyLimitTimeout, CoordinationError
from .filestore import FileStore
from .files import SharedFileIds
from .fleet import Coordination, close_all, coordination_for
from .keys import DEFAULT_LIMITS, FleetKey, default_limit, fleet_key
from .limiter import ConcurrencyLimiter, Lease
from .opener import FallbackStore, check_store_url, open_store, process_store
from .store import MemoryStore, Store
from .throttle import CoolDown, OAuthRateGuard
from .tokens import SharedTokenCache

__all__ = [
    "ConcurrencyLimitTimeout",
    "ConcurrencyLimiter",
    "CoolDown",
    "Coordination",
    "CoordinationError",
    "DEFAULT_LIMITS",
    "FallbackStore",
    "FileStore",
    "FleetKey",
    "Lease",
    "MemoryStore",
    "OAuthRateGuard",
    "SharedFileIds",
    "SharedTokenCache",
    "Store",
    "check_store_url",
    "close_all",
    "coordination_for",
    "default_limit",
    "fleet_key",
    "open_store",
    "process_store",
]
