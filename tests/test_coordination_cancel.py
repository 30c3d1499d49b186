"""A wait for a slot that is cancelled leaves the queue at once, and keeps no slot.

``ConcurrencyLimiter.acquire(cancel=...)`` takes a call's cancel scope. A
waiter sleeps on its store's own wake-up (an event in-process, a named pipe
with the file store, a ``BLPOP`` with Redis), so the canceller wakes it
through the store; these tests cancel waits at the awkward moments (before
it queues, as it is served) on all three stores.
"""

from __future__ import annotations

import pathlib
from typing import Callable, List, Optional

import pytest

from gigachat_lite.coordination import ConcurrencyLimiter, Coordination, Lease, Store, coordination_for, open_store
from redis_server import RedisServer, redis_server  # noqa: F401  (fixtures)

TIMEOUT = 15.0  # the waiting call's own timeout: what it would wait for without the fix


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
