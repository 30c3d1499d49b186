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
import os
import re
import threading
import time
import weakref
from collections import deque
from typing import Deque, Dict, Optional, Tuple

from ._slots import LOST, Slots

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

    # -- leases: at most ``limit`` holders at once, served first come, first served -------

    @abc.abstractmethod
    def lease_acquire(self, name: str, holder: str, limit: int, ttl: float) -> bool:
        """Take a lease for ``holder`` if fewer than ``limit`` live ones exist and nobody queues (or renew its own)."""

    @abc.abstractmethod
    def lease_renew(self, name: str, holder: str, ttl: float, limit: int = 0) -> bool:
        """Push ``holder``'s lease expiry to ``ttl`` from now.

        A lease the store no longer has (it expired, or the store restarted
        empty) is taken again when fewer than ``limit`` are held (``0``: never).
        False when ``holder`` holds no lease afterwards.
        """

    @abc.abstractmethod
    def lease_release(self, name: str, holder: str) -> None:
        """Drop ``holder``'s lease, handing the slot to the first waiter; a no-op if it holds none."""

    @abc.abstractmethod
    def lease_count(self, name: str) -> int:
        """How many live leases ``name`` has (diagnostics and tests)."""

    def lease_queue(self, name: str, holder: str, limit: int, ttl: float) -> Optional[float]:
        """Queue ``holder`` for a lease (or renew its place, ``ttl`` seconds), and serve the queue.

        Returns ``None`` once ``holder`` holds a lease; else the seconds after
        which it should call again at the latest (when a lease expires, its
        slot may free without a release). Waiters are served in the order
        they first called. This default, for stores without a queue, only
        tries :meth:`lease_acquire` and asks to be polled in 50 ms.
        """
        return None if self.lease_acquire(name, holder, limit, ttl) else 0.05

    def lease_wait(self, name: str, holder: str, seconds: float) -> bool:
        """Block up to ``seconds`` for ``holder``'s turn; True when it was served (it holds a lease).

        False after ``seconds`` (or sooner, spuriously): call :meth:`lease_queue` again.
        """
        time.sleep(max(seconds, 0.0))
        return False

    def lease_leave(self, name: str, holder: str) -> bool:
        """Leave the queue (the waiter gives up); True if ``holder`` was served meanwhile and holds a lease."""
        return False

    def lease_interrupt(self, name: str, holder: str) -> None:
        """Make ``holder``'s :meth:`lease_wait` (in another thread of this process) return now, as not served.

        For a waiter whose call was cancelled: it then leaves the queue
        itself. Called from whatever thread cancels (a finaliser, the event
        loop), so it neither blocks nor raises, and takes no lock the store's
        other methods take. This default, for stores whose waits are short
        sleeps, does nothing.
        """

    def lease_waiting(self, name: str) -> int:
        """How many callers queue for a lease on ``name`` (diagnostics and tests)."""
        return 0

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
    """One process's store: a dict under a lock (threads coordinate, processes do not).

    Slots go to waiting threads in arrival order; each waiter sleeps on its
    own :class:`threading.Event`, set by whoever hands it the slot.
    """

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Dict[str, Tuple[str, float]] = {}
        self._slots_by_name: Dict[str, Slots] = {}
        self._wakers: Dict[str, threading.Event] = {}  # waiting holder -> its wake-up
        self._hits: Dict[str, Deque[float]] = {}
        _MEMORY_STORES.add(self)

    def _after_fork(self) -> None:
        # The child starts empty: its parent's leases, waiters and fetch locks belong to threads it does not
        # have (one held at the fork would stall it for the entry's TTL), and the lock may have been held.
        self._lock = threading.Lock()
        self._values, self._slots_by_name, self._wakers, self._hits = {}, {}, {}, {}

    def clear(self) -> None:
        """Drop every entry (tests, and a fresh start after a fork)."""
        with self._lock:
            self._values.clear()
            self._slots_by_name.clear()
            self._hits.clear()
            for event in self._wakers.values():
                event.set()  # a waiter wakes, finds the table empty and queues again
            self._wakers.clear()

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

    # Leases: one Slots table per name (see _slots.py); a waiter sleeps on its own Event.

    def _slots(self, name: str) -> Slots:
        slots = self._slots_by_name.get(name)
        if slots is None:
            slots = self._slots_by_name[name] = Slots()
        return slots

    def _tidy(self, name: str, slots: Slots) -> None:
        if not slots:
            self._slots_by_name.pop(name, None)

    def _notify(self, holder: str) -> bool:
        event = self._wakers.get(holder)
        if event is not None:
            event.set()
        return True  # a thread that stops waiting leaves the queue itself

    def lease_acquire(self, name: str, holder: str, limit: int, ttl: float) -> bool:
        with self._lock:
            slots = self._slots(name)
            taken = slots.acquire(holder, limit, ttl, time.monotonic())
            self._tidy(name, slots)
            return taken

    def lease_renew(self, name: str, holder: str, ttl: float, limit: int = 0) -> bool:
        with self._lock:
            slots = self._slots(name)
            held = slots.renew(holder, ttl, limit, time.monotonic()) != LOST
            self._tidy(name, slots)
            return held

    def lease_release(self, name: str, holder: str) -> None:
        with self._lock:
            slots = self._slots_by_name.get(name)
            if slots is not None:
                slots.release(holder, time.monotonic(), self._notify)
                self._tidy(name, slots)

    def lease_count(self, name: str) -> int:
        with self._lock:
            slots = self._slots_by_name.get(name)
            return 0 if slots is None else slots.count(time.monotonic())

    def lease_waiting(self, name: str) -> int:
        with self._lock:
            slots = self._slots_by_name.get(name)
            return 0 if slots is None else slots.waiting(time.monotonic())

    def lease_queue(self, name: str, holder: str, limit: int, ttl: float) -> Optional[float]:
        with self._lock:
            now = time.monotonic()
            slots = self._slots(name)
            for dropped in slots.purge(now):
                self._wakers.pop(dropped, None)
            if slots.join(holder, limit, ttl, now, self._notify):
                self._wakers.pop(holder, None)
                return None
            self._wakers.setdefault(holder, threading.Event())
            return slots.next_expiry(now, ttl)

    def lease_wait(self, name: str, holder: str, seconds: float) -> bool:
        with self._lock:
            event = self._wakers.get(holder)
        if event is None or not event.wait(max(seconds, 0.0)):
            return False
        with self._lock:
            slots = self._slots_by_name.get(name)
            if slots is None or holder not in slots.leases:
                event.clear()  # woken by clear() or lease_interrupt(): not served
                return False
            self._wakers.pop(holder, None)
            return True

    def lease_interrupt(self, name: str, holder: str) -> None:
        # Without the lock: a finaliser may call this in a thread that holds it (dict.get is atomic).
        event = self._wakers.get(holder)
        if event is not None:
            event.set()

    def lease_leave(self, name: str, holder: str) -> bool:
        with self._lock:
            self._wakers.pop(holder, None)
            slots = self._slots_by_name.get(name)
            if slots is None:
                return False
            served = slots.leave(holder, time.monotonic())
            self._tidy(name, slots)
            return served

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


_MEMORY_STORES: "weakref.WeakSet[MemoryStore]" = weakref.WeakSet()


def _after_fork() -> None:
    for store in list(_MEMORY_STORES):
        store._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
