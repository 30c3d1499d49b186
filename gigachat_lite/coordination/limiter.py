"""At most N requests or streams in flight per key, across every process using the store.

A slot is a **lease**: an entry in ``slots.XXX.<digest>`` (holder id ->
expiry) that lives ``ttl`` seconds unless renewed. Holder ids are a process
id and a random suffix, nothing more.

Renewal is done by one background thread per process, not by the stream's
chunks. GigaChat counts a request against the limit for as long as its
connection is open, whether chunks flow or not: the first chunk may take
many seconds while the model thinks, and a non-streamed call sends nothing
until the end. So a lease must live exactly as long as its holder is alive
and has not let go, which is what a heartbeat gives: the thread renews every
held lease each ``ttl / 3`` seconds, and a worker that is killed stops
renewing, so its slot frees within ``ttl``. :meth:`Lease.renew` is there for
callers who want to check the lease is still theirs (it is cheap and may be
called per chunk), but nothing depends on it.

A lease is released however its holder lets go: :meth:`Lease.release`
(idempotent), ``with``, :meth:`Lease.release_soon`, garbage collection of
the :class:`Lease`, or interpreter exit. The last three take no lock: a
finaliser may run inside any call, even one holding the store's own lock, so
they only queue the release (a lock-free ``deque.append``) for the renewer
thread, which wakes at least every half second while leases are held, and
for the next :meth:`ConcurrencyLimiter.acquire` in the process.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import random
import threading
import time
import uuid
import weakref
from typing import Any, Deque, Hashable, Optional, Tuple

from .errors import ConcurrencyLimitTimeout, CoordinationError
from .keys import default_limit, fleet_key
from .store import Store

__all__ = ["ConcurrencyLimiter", "Lease", "release_pending"]

log = logging.getLogger("gigachat_lite.coordination")


def _release(store: Store, name: str, holder: str, pid: int) -> None:
    if os.getpid() != pid:
        return  # a forked child inherited the object: the lease is its parent's to release
    try:
        store.lease_release(name, holder)
    except CoordinationError as exc:
        # Release runs in finally blocks and finalizers: it must not raise. The
        # lease expires by itself within its TTL.
        log.warning("could not release a concurrency slot (it expires by itself): %s", exc)


_Release = Tuple[Store, str, str, int]
# Releases queued by finalisers, run by a thread that holds no lock (see the module docstring).
_PENDING: Deque[_Release] = collections.deque()


_EXITING: "list[bool]" = []  # non-empty once the interpreter exits: nobody would run the queue after that


def _release_later(store: Store, name: str, holder: str, pid: int) -> None:
    if _EXITING:
        _release(store, name, holder, pid)
    else:
        _PENDING.append((store, name, holder, pid))  # atomic in CPython, takes no lock


def release_pending() -> None:
    """Release the leases that finalisers queued (called where taking a lock is safe)."""
    while True:
        try:
            args = _PENDING.popleft()
        except IndexError:
            return
        _release(*args)


def _at_exit() -> None:
    # weakref.finalize's own exit hook may run before or after this one: either way nothing stays queued.
    _EXITING.append(True)
    release_pending()


atexit.register(_at_exit)


class Lease:
    """One held slot. Release it when the request or stream is over."""

    def __init__(self, store: Store, name: str, holder: str, ttl: float, scope: str) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.scope = scope
        self.lost = False  # set when a renewal found the lease already expired
        self._renewed = time.monotonic()
        self._release = weakref.finalize(self, _release_later, store, name, holder, os.getpid())
        _RENEWER.add(self)

    @property
    def held(self) -> bool:
        """True until released (or found expired)."""
        return self._release.alive and not self.lost

    def renew(self) -> bool:
        """Push the expiry ``ttl`` seconds ahead; False if the lease was released or had expired."""
        if not self._release.alive:
            return False
        try:
            ok = self.store.lease_renew(self.name, self.holder, self.ttl)
        except CoordinationError as exc:
            log.warning("could not renew a concurrency slot: %s", exc)
            return not self.lost
        self._renewed = time.monotonic()
        if not ok and self._release.alive and not self.lost:  # not merely released meanwhile
            self.lost = True
            log.warning("a concurrency slot for %s expired while held (the process stalled for over %.0f s)", self.scope, self.ttl)
        return ok

    def release(self) -> None:
        """Give the slot back now (idempotent; never raises)."""
        detached = self._release.detach()
        if detached is not None:
            _release(*detached[2])

    def release_soon(self) -> None:
        """Give the slot back without taking any lock (for finalisers): queued for the renewer thread."""
        detached = self._release.detach()
        if detached is not None:
            _release_later(*detached[2])

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<Lease {self.scope} held={self.held}>"


def _renew_due(leases: "list[Lease]") -> None:
    # A function of its own, so no loop variable keeps a lease alive in the renewer's frame.
    for lease in leases:
        if lease._renewed + lease.ttl / 3 <= time.monotonic() + 0.005:
            lease.renew()


class _Renewer:
    """The process's heartbeat thread: renews every live lease each ttl/3 seconds."""

    def __init__(self) -> None:
        self._leases: "weakref.WeakSet[Lease]" = weakref.WeakSet()
        self._wake = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def add(self, lease: Lease) -> None:
        with self._wake:
            self._leases.add(lease)
            if self._thread is None or not self._thread.is_alive():
                # Started on the first lease, so a process that never limits pays nothing.
                self._thread = threading.Thread(target=self._run, name="gigachat_lite-lease-renewer", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            release_pending()
            with self._wake:
                leases = [lease for lease in self._leases if lease.held]
                due = min((lease._renewed + lease.ttl / 3 for lease in leases), default=None)
                now = time.monotonic()
                if due is None or due > now:
                    del leases  # hold no strong reference while asleep, or GC could not release them
                    # While leases are held, wake at least every 0.5 s: a dropped one's queued release
                    # then frees its slot within that, not a TTL later.
                    self._wake.wait(None if due is None else min(due - now, 0.5))
                    continue
            _renew_due(leases)
            del leases

    def reset_after_fork(self) -> None:
        # The child has no renewer thread and must not renew its parent's leases.
        self._leases = weakref.WeakSet()
        self._wake = threading.Condition()
        self._thread = None


_RENEWER = _Renewer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_RENEWER.reset_after_fork)


class ConcurrencyLimiter:
    """Hands out at most ``limit`` leases per key at once, fleet-wide.

    Args:
        store: where the leases live.
        limit: slots per key; ``None`` takes GigaChat's per-scope default
            (1 for ``GIGACHAT_API_PERS``, 10 for ``_B2B`` and ``_CORP``).
        ttl: seconds a lease outlives its holder's last heartbeat.
    """

    def __init__(self, store: Store, *, limit: Optional[int] = None, ttl: float = 10.0) -> None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"concurrency limit must be a positive int, got {limit!r}")
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl!r}")
        self.store = store
        self.ttl = ttl
        self._limit = limit

    def limit_for(self, key: Hashable) -> int:
        """The slot count for ``key`` (its scope's default unless set)."""
        return self._limit if self._limit is not None else default_limit(fleet_key(key).scope)

    def in_flight(self, key: Hashable) -> int:
        """Live leases on ``key`` across the fleet now."""
        release_pending()
        return self.store.lease_count(fleet_key(key).name("slots"))

    def acquire(self, key: Hashable, timeout: Optional[float] = None) -> Lease:
        """Wait for a slot on ``key`` and return its :class:`Lease`.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes.

        Raises:
            ConcurrencyLimitTimeout: no slot freed up within ``timeout``.
            CoordinationError: the store could not be reached.
        """
        release_pending()
        fleet = fleet_key(key)
        name, limit = fleet.name("slots"), self.limit_for(fleet)
        holder = f"{os.getpid()}-{uuid.uuid4().hex[:16]}"
        start = time.monotonic()
        pause = 0.005
        while True:
            if self.store.lease_acquire(name, holder, limit, self.ttl):
                return Lease(self.store, name, holder, self.ttl, fleet.scope)
            waited = time.monotonic() - start
            if timeout is not None and waited >= timeout:
                raise ConcurrencyLimitTimeout("a concurrency slot", limit=limit, waited=waited, scope=fleet.scope)
            # Poll with jittered backoff (5 -> 100 ms): a release is seen within
            # ~100 ms, and 100 waiters cost the store ~1,000 cheap calls a second.
            nap = pause * random.uniform(0.5, 1.5)
            if timeout is not None:
                nap = min(nap, timeout - waited)
            time.sleep(max(nap, 0.0))
            pause = min(pause * 2, 0.1)
