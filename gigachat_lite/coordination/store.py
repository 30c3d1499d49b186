"""The coordination store interface, and its in-process backend.

A :class:`Store` offers a handful of atomic operations on named entries, each
with a time to live, and nothing else: every policy (single-flight tokens,
concurrency leases, cool-downs, the OAuth rate guard) is written once on top
of it, in :mod:`.tokens`, :mod:`.limiter` and :mod:`.throttle`. Three
backends implement it: :class:`MemoryStore` (this module, one process),
:class:`~.filestore.FileStore` (one machine) and
:class:`~.redisstore.RedisStore` (many hosts).

Names are short ASCII strings (``[A-Za-z0-9_.-]``) made by :mod:`.keys`; a
backend may prefix them but never needs to escape them. Every entry expires:
a process that dies leaves nothing behind for longer than its TTL.
"""

from __future__ import annotations

import abc
import re
import threading
import time
from collections import deque
from typing import Deque, Dict, Optional, Tuple

__all__ = ["Store", "MemoryStore", "check_name"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}\Z")


def check_name(name: str) -> str:
    """Return ``name`` if a backend can use it as is (file name, Redis key); else raise ValueError."""
    if not isinstance(name, str) or not _NAME.match(name) or name.startswith("."):
        raise ValueError(f"invalid coordination entry name {name!r}")
    return name


class Store(abc.ABC):
    """Atomic operations on named, expiring entries, shared by whoever opens the same store.

    Times are seconds (floats). Each method is atomic across every process
    using the store. Backends raise :class:`~.errors.CoordinationError` when
    the store cannot be reached, never hang.
    """

    #: the store's URL with any password removed (safe to log)
    url: str = "memory://"

    # -- plain values: tokens, locks ------------------------------------------------

    @abc.abstractmethod
    def get(self, name: str) -> Optional[str]:
        """The value of ``name``, or ``None`` if absent or expired."""

    @abc.abstractmethod
    def set(self, name: str, value: str, ttl: float) -> None:
        """Store ``value`` under ``name`` for ``ttl`` seconds, replacing any value."""

    @abc.abstractmethod
    def add(self, name: str, value: str, ttl: float) -> bool:
        """Store ``value`` only if ``name`` is absent (a lock); True if stored."""

    @abc.abstractmethod
    def delete(self, name: str, expected: Optional[str] = None) -> bool:
        """Remove ``name`` (only if its value is ``expected``, when given); True if removed."""

    # -- cool-downs ------------------------------------------------------------------

    @abc.abstractmethod
    def extend(self, name: str, ttl: float) -> None:
        """Make ``name`` live at least ``ttl`` more seconds (a longer remaining life is kept)."""

    @abc.abstractmethod
    def remaining(self, name: str) -> float:
        """Seconds ``name`` has left to live; 0.0 when absent."""

    # -- leases: at most ``limit`` holders at once -----------------------------------

    @abc.abstractmethod
    def lease_acquire(self, name: str, holder: str, limit: int, ttl: float) -> bool:
        """Take a lease for ``holder`` if fewer than ``limit`` live ones exist (or renew its own)."""

    @abc.abstractmethod
    def lease_renew(self, name: str, holder: str, ttl: float) -> bool:
        """Push ``holder``'s lease expiry to ``ttl`` from now; False if it had already expired."""

    @abc.abstractmethod
    def lease_release(self, name: str, holder: str) -> None:
        """Drop ``holder``'s lease; a no-op if it holds none."""

    @abc.abstractmethod
    def lease_count(self, name: str) -> int:
        """How many live leases ``name`` has (diagnostics and tests)."""

    # -- sliding-window rate -----------------------------------------------------------

    @abc.abstractmethod
    def rate_hit(self, name: str, limit: int, window: float) -> float:
        """Record one event if fewer than ``limit`` happened in the last ``window`` seconds.

        Returns 0.0 when recorded, else the seconds until one slot frees
        (nothing recorded then).
        """

    def close(self) -> None:
        """Release connections or handles (the store's entries stay)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


class MemoryStore(Store):
    """One process's store: a dict under a lock (threads coordinate, processes do not)."""

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Dict[str, Tuple[str, float]] = {}
        self._leases: Dict[str, Dict[str, float]] = {}
        self._hits: Dict[str, Deque[float]] = {}

    def clear(self) -> None:
        """Drop every entry (tests, and a fresh start after a fork)."""
        with self._lock:
            self._values.clear()
            self._leases.clear()
            self._hits.clear()

    def _live(self, name: str, now: float) -> Optional[Tuple[str, float]]:
        entry = self._values.get(name)
        if entry is not None and entry[1] <= now:
            del self._values[name]
            return None
        return entry

    def get(self, name: str) -> Optional[str]:
        with self._lock:
            entry = self._live(name, time.monotonic())
        return entry[0] if entry else None

    def set(self, name: str, value: str, ttl: float) -> None:
        with self._lock:
            self._values[name] = (value, time.monotonic() + ttl)

    def add(self, name: str, value: str, ttl: float) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._live(name, now) is not None:
                return False
            self._values[name] = (value, now + ttl)
            return True

    def delete(self, name: str, expected: Optional[str] = None) -> bool:
        with self._lock:
            entry = self._live(name, time.monotonic())
            if entry is None or (expected is not None and entry[0] != expected):
                return False
            del self._values[name]
            return True

    def extend(self, name: str, ttl: float) -> None:
        with self._lock:
            now = time.monotonic()
            entry = self._live(name, now)
            if entry is None or entry[1] < now + ttl:
                self._values[name] = ("1", now + ttl)

    def remaining(self, name: str) -> float:
        with self._lock:
            now = time.monotonic()
            entry = self._live(name, now)
        return max(entry[1] - now, 0.0) if entry else 0.0

    def _leases_of(self, name: str, now: float) -> Dict[str, float]:
        leases = self._leases.get(name)
        if leases is None:
            return {}  # not stored: only lease_acquire adds a name
        for holder in [h for h, until in leases.items() if until <= now]:
            del leases[holder]
        return leases

    def lease_acquire(self, name: str, holder: str, limit: int, ttl: float) -> bool:
        with self._lock:
            now = time.monotonic()
            leases = self._leases_of(name, now)
            if holder not in leases and len(leases) >= limit:
                return False
            self._leases.setdefault(name, leases)[holder] = now + ttl
            return True

    def lease_renew(self, name: str, holder: str, ttl: float) -> bool:
        with self._lock:
            now = time.monotonic()
            leases = self._leases_of(name, now)
            if holder not in leases:
                return False
            leases[holder] = now + ttl
            return True

    def lease_release(self, name: str, holder: str) -> None:
        with self._lock:
            leases = self._leases.get(name)
            if leases is not None:
                leases.pop(holder, None)
                if not leases:
                    del self._leases[name]

    def lease_count(self, name: str) -> int:
        with self._lock:
            return len(self._leases_of(name, time.monotonic()))

    def rate_hit(self, name: str, limit: int, window: float) -> float:
        with self._lock:
            now = time.monotonic()
            hits = self._hits.setdefault(name, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) < limit:
                hits.append(now)
                return 0.0
            return max(hits[0] + window - now, 1e-3)
