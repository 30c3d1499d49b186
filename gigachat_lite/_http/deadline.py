"""A bound on a whole call, from the first connect to the last byte: ``deadline=`` and ``first_byte_timeout=``.

Timeouts apply per read: a server that trickles its headers one byte every
100 ms never trips one. A :class:`Deadline` is armed for each call when either
setting is given; a single watchdog thread shuts the call's sockets down when
it passes, so whatever read is blocked returns at once, and the call raises
:class:`DeadlineExceeded` (:class:`StreamDeadlineExceeded` from a stream,
whose text so far stays on ``stream.text``). Retries never sleep past it
(retry.py). With neither setting nothing here runs.

The sockets are found by the connections of :class:`~.adapter.GigaChatAdapter`'s
pools: each hands its socket to the scope in :data:`SCOPES` (this thread's
innermost, and the ones around it) when made and before a reply is read. The
watchdog takes only its own lock; shutting a socket down touches no pool.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import DeadlineExceeded, GigaChatError, StreamDeadlineExceeded

__all__ = ["Deadline", "SCOPES", "cancellable", "current", "using"]


class Deadline:
    """The bounds of one call, the sockets it uses, and which bound passed (``expired``).

    With neither bound it is a cancel scope: :meth:`cancel` ends whatever the
    call is doing (the async adapter's way to stop a call it no longer awaits).
    Scopes nest (``with using(...)`` inside another): the sockets are watched
    by every scope around the call, and an outer scope that fires fires the inner ones.
    """

    __slots__ = ("seconds", "first_byte", "at", "first_byte_at", "sockets", "expired", "done", "stream", "outer",
                 "inner", "stopped", "wakers", "retries_stopped")

    def __init__(self, seconds: Optional[float] = None, first_byte: Optional[float] = None, *, stream: bool = False) -> None:
        now = time.monotonic()
        self.seconds, self.first_byte, self.stream = seconds, first_byte, stream
        self.at = None if seconds is None else now + seconds
        self.first_byte_at = None if first_byte is None else now + first_byte
        self.sockets: List[Any] = []
        self.expired: Optional[str] = None
        self.done = False
        self.outer: Optional[Deadline] = None
        self.inner: List[Deadline] = []
        self.stopped = threading.Event()  # set when it fires: wakes a retry's wait at once
        self.wakers: List[Callable[[], None]] = []  # see on_stop()
        self.retries_stopped = False  # see stop_retries()

    def remaining(self) -> Optional[float]:
        """Seconds left before the overall deadline, or ``None`` without one."""
        return None if self.at is None else self.at - time.monotonic()

    def watch(self, sock: Any) -> None:
        self.sockets.append(sock)
        if self.expired:
            _shut(sock)

    def cancel(self) -> None:
        """Stop the call now: its sockets are shut, so a blocked connect or read returns at once."""
        self.fire("cancelled")

    def on_stop(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` when this scope fires (at once if it has); return what forgets it.

        For a wait that no socket of the call's ends, such as a queue for a
        concurrency slot (:meth:`~gigachat_lite.coordination.ConcurrencyLimiter.acquire`'s
        ``cancel``). ``wake`` runs in the firing thread (the watchdog, the
        event loop, a finaliser), perhaps twice: it must be idempotent, quick
        and take no lock that thread may hold.
        """
        self.wakers.append(wake)
        if self.expired:  # fired before the append, its loop may have missed it
            wake()
        return functools.partial(_forget, self.wakers, wake)

    def stop_retries(self) -> None:
        """No new try from now on: a retry's wait ends at once and the retry is not made.

        Unlike :meth:`cancel`, the request on the wire goes on: its reply (paid
        for) is still read. For a batch being stopped.
        """
        self.retries_stopped = True
        self.stopped.set()
        for inner in list(self.inner):
            inner.stop_retries()

    def sleep(self, seconds: float) -> None:
        """``time.sleep(seconds)``, cut short when this scope (or one around it) fires."""
        self.stopped.wait(seconds)

    def got_first_byte(self) -> None:
        self.first_byte_at = None

    def finish(self) -> None:
        """The call is over: the watchdog forgets it. Takes no lock (safe in a finaliser)."""
        self.done = True
        self.sockets = []

    def error(self, *, events: Optional[int] = None, request_id: Optional[str] = None) -> DeadlineExceeded:
        if self.expired == "cancelled":
            what = "the call was cancelled"
        elif self.expired == "first byte":
            what = f"no reply within first_byte_timeout={self.first_byte:g} s"
        else:
            what = f"the call took longer than deadline={self.seconds:g} s"
        if events is None:
            return DeadlineExceeded(what)
        return StreamDeadlineExceeded(f"{what}; the stream stopped after {events} events (request id {request_id})")

    def run(self, send: Callable[..., Any], kwargs: Dict[str, Any], default_timeout: Tuple[float, float]) -> Any:
        """``send(**kwargs)`` (one whole call) under this deadline; a stream's response carries it on."""
        if self.seconds is not None:  # no single connect or read may wait past it either
            given = kwargs.get("timeout") or default_timeout
            connect, read = given if isinstance(given, tuple) else (given, given)
            kwargs["timeout"] = (min(connect, self.seconds), min(read, self.seconds))
        try:
            with using(self):
                response = send(**kwargs)
        except GigaChatError as exc:
            self.finish()
            if self.expired:
                raise self.error() from exc
            raise
        except BaseException:
            self.finish()
            raise
        if self.expired:  # a reply cut by the watchdog may look whole (no Content-Length)
            response.close()
            self.finish()
            raise self.error()
        if not self.stream:
            self.finish()  # a stream's reader finishes it (the session hands it over)
        return response

    def fire(self, reason: str) -> None:
        if self.done or self.expired:
            return
        if reason == "first byte" and (self.first_byte_at is None or time.monotonic() < self.first_byte_at):
            return  # the first byte came in time
        self.expired = reason
        self.stopped.set()
        for sock in list(self.sockets):
            _shut(sock)
        for wake in list(self.wakers):
            try:
                wake()
            except Exception:  # it may run in the watchdog thread, which must outlive any one call
                pass
        for inner in list(self.inner):
            inner.fire(reason)


def _forget(wakers: List[Callable[[], None]], wake: Callable[[], None]) -> None:
    try:
        wakers.remove(wake)
    except ValueError:
        pass


def _shut(sock: Any) -> None:
    # socket.socket's own shutdown, also for an SSLSocket (whose override drops
    # its SSL object under the feet of the thread reading it).
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError, ValueError):
        pass


class _Watchdog:
    """One daemon thread for the process, started by the first deadline; a heap of (when, seq, deadline, why)."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.heap: List[Tuple[float, int, Deadline, str]] = []
        self.seq = itertools.count()
        self.thread: Optional[threading.Thread] = None

    def arm(self, deadline: Deadline) -> None:
        with self.cond:
            for when, why in ((deadline.at, "deadline"), (deadline.first_byte_at, "first byte")):
                if when is not None:
                    heapq.heappush(self.heap, (when, next(self.seq), deadline, why))
            if len(self.heap) > 1024:  # finished calls linger until their time: drop them now and then
                self.heap = [entry for entry in self.heap if not entry[2].done]
                heapq.heapify(self.heap)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="gigachat_lite-deadline", daemon=True)
                self.thread.start()
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.heap or self.heap[0][0] > time.monotonic():
                    # Capped: a wait past threading.TIMEOUT_MAX raises OverflowError and would end this thread.
                    self.cond.wait(None if not self.heap else min(self.heap[0][0] - time.monotonic(), 3600.0))
                _, _, deadline, why = heapq.heappop(self.heap)
            deadline.fire(why)


_WATCHDOG = _Watchdog()
#: ``SCOPES.deadline``: the innermost scope of the call running in this thread (absent: none). The
#: adapter's connections read it as an attribute: a call with no scope never enters this module.
SCOPES = threading.local()


def _after_fork() -> None:
    # The watchdog thread does not survive a fork, and its lock may have been held. SCOPES stays
    # the same object (the adapter holds it): only the forking thread's entry is dropped.
    global _WATCHDOG
    _WATCHDOG = _Watchdog()
    vars(SCOPES).clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def current() -> Optional[Deadline]:
    """The deadline of the call running in this thread, if any."""
    return getattr(SCOPES, "deadline", None)


class using:
    """``with using(deadline):`` arms it and makes it this thread's current one, inside the one before."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __enter__(self) -> Deadline:
        deadline = self.deadline
        outer = deadline.outer = current()
        SCOPES.deadline = deadline
        if outer is not None:
            outer.inner.append(deadline)
            if outer.expired:
                deadline.fire(outer.expired)
            elif outer.retries_stopped:
                deadline.stop_retries()
        if deadline.at is not None or deadline.first_byte_at is not None:
            _WATCHDOG.arm(deadline)
        return deadline

    def __exit__(self, *exc_info: Any) -> None:
        deadline = self.deadline
        SCOPES.deadline = deadline.outer
        if deadline.outer is not None:
            try:
                deadline.outer.inner.remove(deadline)
            except ValueError:
                pass


def cancellable(function: Callable[[], Any]) -> Tuple[Callable[[], Any], Callable[[], None]]:
    """``function`` made stoppable from another thread: ``(run, cancel)``.

    ``run()`` calls ``function`` in a cancel scope; ``cancel()`` shuts the
    sockets it uses, so a connect, a wait for the reply's headers, a retry's
    wait or a read blocked in it returns at once and the call ends (its
    concurrency slot given back by the usual error path).
    """
    scope = Deadline()

    def run() -> Any:
        with using(scope):
            return function()

    return run, scope.cancel

