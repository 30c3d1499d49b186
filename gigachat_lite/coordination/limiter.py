"""At most N requests or streams in flight per key, across every process using the store.

A slot is a **lease**: an entry in ``slots.XXX.<digest>`` (holder id ->
expiry) that lives ``ttl`` seconds unless renewed. Holder ids are a process
id and a random suffix, nothing more.

**First come, first served.** A caller that finds every slot taken joins the
key's queue in the store and sleeps until the store hands it a slot: whoever
releases one gives it to the first waiter and wakes that waiter alone (an
event in-process, a named pipe with the file store, a ``BLPOP`` with Redis;
see :mod:`._slots`). Nobody polls, and a released slot reaches the next
waiter in well under a millisecond of store time. A waiter renews its place
every ``ttl / 3`` seconds while it waits (a few store calls per wait: one to
queue, one to sleep, one more pair per ``ttl / 3`` of waiting), so one that
dies drops out within ``ttl``; one that gives up (its timeout) leaves the
queue at once. So does one whose call is cancelled from another thread
(``acquire(cancel=...)``, the call's cancel scope): the canceller wakes it
through the store (:meth:`.Store.lease_interrupt`, the same event, pipe or
list a hand-over uses), so a waiter that is not cancelled pays nothing for it.

Renewal is done by one background thread per process, not by the stream's
chunks. GigaChat counts a request against the limit for as long as its
connection is open, whether chunks flow or not: the first chunk may take
many seconds while the model thinks, and a non-streamed call sends nothing
until the end. So a lease must live exactly as long as its holder is alive
and has not let go, which is what a heartbeat gives: the thread renews every
held lease each ``ttl / 3`` seconds, and a worker that is killed stops
renewing, so its slot frees within ``ttl``. A renewal that finds its lease
gone (the store restarted empty, or the process stalled past the TTL) takes
it back if a slot is free; if not, the lease is marked :attr:`Lease.lost`
and a warning logged. :meth:`Lease.renew` is there for callers who want to
check the lease is still theirs (it is cheap and may be called per chunk),
but nothing depends on it.

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
import threading
import time
import uuid
import weakref
from typing import Any, Callable, Deque, Hashable, List, Optional, Protocol, Tuple

from .errors import ConcurrencyLimitTimeout, CoordinationError
from .keys import default_limit, fleet_key
from .store import Store

__all__ = ["Cancel", "ConcurrencyLimiter", "Lease", "release_pending"]

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

    def __init__(self, store: Store, name: str, holder: str, ttl: float, scope: str, limit: int = 0) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.scope = scope
        self.limit = limit  # a renewal that finds the lease gone takes it back while fewer are held
        self.lost = False  # set when a renewal found the lease gone and every slot taken
        self._renewed = time.monotonic()
        self._failing = False  # the last renewal met a store error (logged once per outage)
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
            ok = self.store.lease_renew(self.name, self.holder, self.ttl, self.limit)
        except CoordinationError as exc:
            # Tried again in a second, not at once: the renewer would otherwise spin on a store that is down
            # (and log each try). A second leaves the lease time to be renewed when the store is back.
            self._renewed = time.monotonic() - self.ttl / 3 + min(1.0, self.ttl / 6)
            if not self._failing:
                self._failing = True
                log.warning("could not renew a concurrency slot (trying again every second): %s", exc)
            return not self.lost
        self._renewed = time.monotonic()
        if self._failing:
            self._failing = False
            log.info("renewed a concurrency slot again: the coordination store answers")
        if ok and not self._release.alive:
            # Released while the renewal was on its way: the store may have taken the lease back
            # after the release (it re-claims a lease it does not have). Give it back again.
            _release(self.store, self.name, self.holder, os.getpid())
            return False
        if not ok and self._release.alive and not self.lost:  # not merely released meanwhile
            self.lost = True
            log.warning(
                "a concurrency slot for %s was lost while held and another caller took it (the store restarted "
                "empty, or this process stalled for over %.0f s)", self.scope, self.ttl)
        elif ok and self.lost:
            self.lost = False  # the store had lost it, and a slot was free: held again
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
        self._wakes_at: Optional[float] = None  # when the sleeping thread wakes by itself (None: only when told)

    def add(self, lease: Lease) -> None:
        with self._wake:
            self._leases.add(lease)
            if self._thread is None or not self._thread.is_alive():
                # Started on the first lease, so a process that never limits pays nothing.
                self._thread = threading.Thread(target=self._run, name="gigachat_lite-lease-renewer", daemon=True)
                self._thread.start()
            # Woken only if it would sleep past this lease's renewal: a wake-up on every lease
            # would take the GIL from the thread that just got the slot, as it sends its request.
            if self._wakes_at is None or lease._renewed + lease.ttl / 3 < self._wakes_at:
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
                    nap = None if due is None else min(due - now, 0.5)
                    self._wakes_at = None if nap is None else now + nap
                    self._wake.wait(nap)
                    self._wakes_at = None
                    continue
            _renew_due(leases)
            del leases

    def reset_after_fork(self) -> None:
        # The child has no renewer thread and must not renew its parent's leases.
        self._leases = weakref.WeakSet()
        self._wake = threading.Condition()
        self._thread = None
        self._wakes_at = None


_RENEWER = _Renewer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_RENEWER.reset_after_fork)


class Cancel(Protocol):
    """What :meth:`ConcurrencyLimiter.acquire` takes as ``cancel``: a call's cancel scope (``_http.deadline.Deadline``)."""

    def on_stop(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` from the cancelling thread when cancelled (at once if it is); return what forgets it."""

    def error(self) -> BaseException:
        """The exception a cancelled wait raises."""


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

    def waiting(self, key: Hashable) -> int:
        """Callers queued for a slot on ``key`` across the fleet now."""
        return self.store.lease_waiting(fleet_key(key).name("slots"))

    def acquire(self, key: Hashable, timeout: Optional[float] = None, *, cancel: Optional[Cancel] = None) -> Lease:
        """Wait for a slot on ``key`` (first come, first served) and return its :class:`Lease`.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes.
            cancel: the call's cancel scope: once it fires, the wait leaves the
                queue at once (a slot handed over meanwhile goes to the next
                waiter) and raises ``cancel.error()``.

        Raises:
            ConcurrencyLimitTimeout: no slot came within ``timeout``.
            CoordinationError: the store could not be reached.
        """
        release_pending()
        fleet = fleet_key(key)
        name, limit = fleet.name("slots"), self.limit_for(fleet)
        holder = f"{os.getpid()}-{uuid.uuid4().hex[:16]}"
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        heartbeat = self.ttl / 3
        store = self.store
        served = left = False
        cancelled: List[bool] = []  # a flag the canceller's thread sets (list.append is atomic)
        forget: Optional[Callable[[], None]] = None
        try:
            if cancel is not None:
                def wake() -> None:
                    if not cancelled:
                        cancelled.append(True)
                        store.lease_interrupt(name, holder)
                forget = cancel.on_stop(wake)
            hint = None if cancelled else store.lease_queue(name, holder, limit, self.ttl)
            while hint is not None and not cancelled:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    left = True
                    if not store.lease_leave(name, holder):  # True: served as it gave up, so ours after all
                        raise ConcurrencyLimitTimeout("a concurrency slot", limit=limit, waited=now - start, scope=fleet.scope)
                    break
                # Sleep until woken, or until a held lease would expire (its holder may have died),
                # or until this waiter must renew its place in the queue, whichever comes first.
                nap = min(hint + 0.001, heartbeat, float("inf") if deadline is None else deadline - now)
                if store.lease_wait(name, holder, nap) or cancelled:
                    break
                hint = store.lease_queue(name, holder, limit, self.ttl)
            if cancelled:
                assert cancel is not None
                left = True
                if store.lease_leave(name, holder):  # served as it was cancelled: the next waiter's slot
                    store.lease_release(name, holder)
                raise cancel.error()
            served = True
        except CoordinationError:
            if not left:
                left = True
                # The store just failed (down, or frozen): asking it again here would keep the caller up
                # to another timeout. Its place, and a slot handed to it, expire within the TTL anyway;
                # a thread of its own gives them back sooner if the store answers.
                threading.Thread(target=_leave, args=(store, name, holder), name="gigachat_lite-lease-leave",
                                 daemon=True).start()
            raise
        finally:
            if forget is not None:
                forget()
            if not served and not left:  # interrupted (KeyboardInterrupt): keep no place, no slot
                _leave(store, name, holder)
        return Lease(store, name, holder, self.ttl, fleet.scope, limit)


def _leave(store: Store, name: str, holder: str) -> None:
    try:
        if store.lease_leave(name, holder):
            store.lease_release(name, holder)
    except CoordinationError:
        pass  # the place expires by itself within the TTL
