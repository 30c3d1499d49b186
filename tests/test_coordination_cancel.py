"""A wait for a slot that is cancelled leaves the queue at once, and keeps no slot.

``ConcurrencyLimiter.acquire(cancel=...)`` takes a call's cancel scope. A
waiter sleeps on its store's own wake-up (an event in-process, a named pipe
with the file store, a ``BLPOP`` with Redis), where no socket of the call is:
shutting the call's sockets down, as a cancel does, cannot reach it, so the
canceller wakes it through the store. The Session-level tests hold a personal
key's one slot with a stream, queue a second call, stop it (its ``aio`` task
cancelled, its ``first_byte_timeout`` passing) and check that it leaves the
queue, and its thread ends, within a couple of seconds rather than at its 15 s
timeout; the others cancel waits at the awkward moments (before it queues, as
it is served). All on the three stores.
"""

from __future__ import annotations

import asyncio
import pathlib
import threading
import time
from typing import Callable, List, Optional

import pytest

from gigachat_lite import DeadlineExceeded, Session, aio
from gigachat_lite.coordination import ConcurrencyLimiter, Coordination, Lease, Store, coordination_for, open_store
from gigachat_lite.coordination.fleet import identity
from gigachat_lite.emulator import Emulator
from redis_server import RedisServer, redis_server  # noqa: F401  (fixtures)
from test_coordination import eventually

pytestmark = pytest.mark.gigachat_emulator(max_in_flight=1, delay=0.02, reply="word " * 400)

TIMEOUT = 15.0  # the waiting call's own timeout: what it would wait for without the fix
PROMPTLY = 3.0  # "at once", with room for a loaded machine; far below TIMEOUT


def url_of(kind: str, request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "file":
        return "file://" + str(tmp_path / "coordination")
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture(params=["memory", "file", "redis"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    return url_of(request.param, request, tmp_path)


@pytest.fixture
def any_store(any_store_url: str) -> Coordination:
    return coordination_for(any_store_url)


def stream_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "gigachat_lite-stream")


def test_a_cancelled_aio_waiter_leaves_the_queue_and_frees_its_thread(
        emu: Emulator, any_store_url: str, any_store: Coordination) -> None:
    session = Session(timeout=TIMEOUT, coordination=any_store_url, **emu.client_config())
    key = identity(emu.auth_url, emu.api_key, None, "GIGACHAT_API_PERS")
    limiter = any_store.limiter
    holder = session.chat("hold")
    assert next(iter(holder))  # the key's only slot is held from here on
    left_after: List[float] = []

    async def main() -> None:
        async def wait_for_a_slot() -> None:
            async for _ in aio.chat("wait", session=session):
                pass

        task = asyncio.create_task(wait_for_a_slot())
        for _ in range(500):  # queued: its thread sleeps on the store's wake-up
            if limiter.waiting(key) == 1:
                break
            await asyncio.sleep(0.01)
        assert limiter.waiting(key) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancelled_at = time.monotonic()
        while limiter.waiting(key) and time.monotonic() - cancelled_at < TIMEOUT + 5:
            await asyncio.sleep(0.01)
        left_after.append(time.monotonic() - cancelled_at)

    try:
        asyncio.run(main())
        assert left_after[0] < PROMPTLY, f"the cancelled waiter left the queue only after {left_after[0]:.1f} s"
        assert eventually(lambda: stream_threads() == 0, PROMPTLY), "its thread still waits for the slot"
        assert limiter.in_flight(key) == 1  # the holder's, and nobody else's
    finally:
        holder.close()
    assert eventually(lambda: limiter.in_flight(key) == 0, PROMPTLY)  # no slot left behind for the cancelled call
    assert Session(timeout=5, coordination=any_store_url, **emu.client_config()).chat("next", stream=False).text


def test_a_waiter_past_its_first_byte_timeout_leaves_the_queue_then(
        emu: Emulator, any_store_url: str, any_store: Coordination) -> None:
    session = Session(timeout=TIMEOUT, coordination=any_store_url, **emu.client_config())
    key = identity(emu.auth_url, emu.api_key, None, "GIGACHAT_API_PERS")
    holder = session.chat("hold")
    assert next(iter(holder))
    try:
        started = time.monotonic()
        # (deadline= bounds the wait through the call's timeout as well; first_byte_timeout= only by firing)
        bounded = Session(timeout=TIMEOUT, first_byte_timeout=0.5, coordination=any_store_url, **emu.client_config())
        with pytest.raises(DeadlineExceeded, match="first_byte_timeout"):
            bounded.chat("wait", stream=False)
        took = time.monotonic() - started
        assert took < PROMPTLY, f"first_byte_timeout=0.5 ended the wait for a slot only after {took:.1f} s"
        assert any_store.limiter.waiting(key) == 0
    finally:
        holder.close()
    assert eventually(lambda: any_store.limiter.in_flight(key) == 0, PROMPTLY)


class Cancel:
    """A cancel signal as ``ConcurrencyLimiter.acquire(cancel=...)`` takes it."""

    def __init__(self) -> None:
        self.wakers: List[Callable[[], None]] = []
        self.fired = False

    def on_stop(self, wake: Callable[[], None]) -> Callable[[], None]:
        self.wakers.append(wake)
        if self.fired:
            wake()
        return lambda: self.wakers.remove(wake)

    def error(self) -> BaseException:
        return InterruptedError("cancelled")

    def fire(self) -> None:
        self.fired = True
        for wake in list(self.wakers):
            wake()


class ServedAsCancelled(Store):
    """Another store, in which the first wait for a slot is served and cancelled at the same moment."""

    def __init__(self, inner: Store, holder: Lease, cancel: Cancel) -> None:
        self.inner, self.holder, self.cancel = inner, holder, cancel
        self.url = inner.url

    def lease_wait(self, name: str, holder: str, seconds: float) -> bool:
        self.holder.release()  # the slot goes to the waiter...
        self.cancel.fire()  # ...whose call is cancelled before it wakes
        return self.inner.lease_wait(name, holder, seconds)

    def lease_queue(self, name: str, holder: str, limit: int, ttl: float) -> Optional[float]:
        return self.inner.lease_queue(name, holder, limit, ttl)

    def lease_interrupt(self, name: str, holder: str) -> None:
        self.inner.lease_interrupt(name, holder)

    def lease_leave(self, name: str, holder: str) -> bool:
        return self.inner.lease_leave(name, holder)

    def lease_waiting(self, name: str) -> int:
        return self.inner.lease_waiting(name)

    def lease_acquire(self, name: str, holder: str, limit: int, ttl: float) -> bool:
        return self.inner.lease_acquire(name, holder, limit, ttl)

    def lease_renew(self, name: str, holder: str, ttl: float, limit: int = 0) -> bool:
        return self.inner.lease_renew(name, holder, ttl, limit)

    def lease_release(self, name: str, holder: str) -> None:
        self.inner.lease_release(name, holder)

    def lease_count(self, name: str) -> int:
        return self.inner.lease_count(name)

    # Not used by the limiter.
    def get(self, name: str) -> Optional[str]:
        raise NotImplementedError

    def set(self, name: str, value: str, ttl: float) -> None:
        raise NotImplementedError

    def add(self, name: str, value: str, ttl: float) -> bool:
        raise NotImplementedError

    def delete(self, name: str, expected: Optional[str] = None) -> bool:
        raise NotImplementedError

    def extend(self, name: str, ttl: float) -> None:
        raise NotImplementedError

    def remaining(self, name: str) -> float:
        raise NotImplementedError

    def rate_hit(self, name: str, limit: int, window: float) -> float:
        raise NotImplementedError


@pytest.mark.parametrize("kind", ["memory", "file", "redis"])
def test_a_waiter_served_just_as_it_is_cancelled_gives_the_slot_back(
        kind: str, request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> None:
    inner = open_store(url_of(kind, request, tmp_path))
    key = ("https://auth.test/served", kind + str(tmp_path), "GIGACHAT_API_PERS")
    first = ConcurrencyLimiter(inner, limit=1).acquire(key)
    cancel = Cancel()
    limiter = ConcurrencyLimiter(ServedAsCancelled(inner, first, cancel), limit=1)
    with pytest.raises(InterruptedError):
        limiter.acquire(key, timeout=TIMEOUT, cancel=cancel)
    assert limiter.in_flight(key) == 0 and limiter.waiting(key) == 0  # neither a place nor a slot is kept
    assert not cancel.wakers  # and the signal forgets the wait
    ConcurrencyLimiter(inner, limit=1).acquire(key, timeout=1).release()


def test_a_wait_cancelled_before_it_starts_takes_no_slot(any_store: Coordination) -> None:
    cancel = Cancel()
    cancel.fire()
    key = ("https://auth.test/early", any_store.store.url, "GIGACHAT_API_PERS")
    with pytest.raises(InterruptedError):
        any_store.limiter.acquire(key, timeout=TIMEOUT, cancel=cancel)
    assert any_store.limiter.in_flight(key) == 0 and any_store.limiter.waiting(key) == 0
