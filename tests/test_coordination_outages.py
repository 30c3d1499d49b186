"""The coordination stores hold no secret, and an unreachable Redis fails fast or falls back (issue 11).

A real redis-server (tests/redis_server.py): stopped mid-run for the outage tests.
"""

from __future__ import annotations

import base64
import pathlib
import signal
import threading
import time
import warnings
from typing import Any, List

import pytest

from gigachat_lite.auth import Token
from gigachat_lite.coordination import (
    ConcurrencyLimiter, ConcurrencyLimitTimeout, Coordination, CoordinationError, FallbackStore,
    SharedTokenCache, Store, fleet_key, open_store,
)
from redis_server import RedisServer, own_redis_server, redis_server  # noqa: F401  (fixtures)

from test_coordination import AUTH, B2B, KEY, PERS, later  # noqa: F401  (the same test key and helpers)


# -- no secret in the store -------------------------------------------------------------------

def exercise(store: Store) -> Any:
    """Put a token, a held slot, a pause, the OAuth guard and a lock in ``store``; return the slot's lease.

    The caller keeps the lease while it looks: dropped, it is given back and its record removed.
    """
    coordination = Coordination(store)
    token = coordination.tokens.get(PERS, lambda: Token("THE-ACCESS-TOKEN", time.time() + 60), 5)
    held = coordination.limiter.acquire(PERS, 1)
    coordination.cooldown.cool_down(PERS, 30)
    coordination.oauth_guard.wait()
    coordination.tokens.store.add(fleet_key(PERS).name("lock"), "owner", 30)
    assert held.held and token.value == "THE-ACCESS-TOKEN"
    return held


SECRETS = [KEY, base64.b64decode(KEY).decode(), "test-secret", "test-client"]


def test_no_secret_in_any_file_name_or_content(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "coordination"
    held = exercise(open_store("file://" + str(folder)))
    texts = [f.name + "\n" + f.read_text("utf-8", "replace") for f in folder.iterdir()]
    held.release()
    assert any("THE-ACCESS-TOKEN" in text for text in texts)  # the scan does see what is stored
    assert not [s for s in SECRETS for text in texts if s in text]


def test_no_secret_in_any_redis_key_or_value(redis_server: RedisServer) -> None:  # noqa: F811
    redis_server.client().flushdb()
    held = exercise(open_store(redis_server.url))
    dump = redis_server.dump()
    assert len(dump) >= 5 and any("THE-ACCESS-TOKEN" in v for vs in dump.values() for v in vs)
    texts = [key + "\n" + "\n".join(values) for key, values in dump.items()]
    assert not [s for s in SECRETS for text in texts if s in text]
    assert all(key.startswith("gigachat_lite:") for key in dump)
    assert all(redis_server.client().pttl(key) > 0 for key in dump)  # everything expires
    held.release()


# -- Redis unreachable ------------------------------------------------------------------------

def test_redis_stopped_mid_run_gives_the_typed_error_quickly(own_redis_server: RedisServer) -> None:  # noqa: F811
    coordination = Coordination(open_store(own_redis_server.url, timeout=1.0))
    lease = coordination.limiter.acquire(PERS, 1)
    own_redis_server.stop()
    for call in (lambda: coordination.limiter.acquire(B2B, 5), lambda: coordination.tokens.get(B2B, lambda: later(60), 5)):
        started = time.monotonic()
        with pytest.raises(CoordinationError, match=r"coordination store redis://127\.0\.0\.1"):
            call()
        assert time.monotonic() - started < 5  # never a hang
    lease.release()  # a release cannot raise: the lease expires by itself


def eventually(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.slow
def test_a_frozen_redis_fails_a_waiting_call_within_its_timeout_plus_the_socket_timeout(
        own_redis_server: RedisServer) -> None:  # noqa: F811
    # SIGSTOP: the server keeps its connections open and answers nothing, as behind a network partition.
    # A waiter asleep in BLPOP read its reply within its longest block plus the timeout, twice with
    # the retry, then left the queue with two more timed-out calls: 18 s for a call with timeout=5.
    assert own_redis_server.process is not None
    socket_timeout, timeout = 2.0, 3.0  # README: CoordinationError "within the Redis client's 2 s socket timeout"
    coordination = Coordination(open_store(own_redis_server.url, timeout=socket_timeout))
    held = coordination.limiter.acquire(PERS, 1)
    outcome: List[Any] = []

    def wait_for_the_slot() -> None:
        started = time.monotonic()
        try:
            coordination.limiter.acquire(PERS, timeout).release()
        except (CoordinationError, ConcurrencyLimitTimeout) as exc:
            outcome.append(exc)
        outcome.append(time.monotonic() - started)

    waiter = threading.Thread(target=wait_for_the_slot, daemon=True)
    waiter.start()
    try:
        assert eventually(lambda: coordination.limiter.waiting(PERS) == 1)
        own_redis_server.process.send_signal(signal.SIGSTOP)
        waiter.join(30)
        assert not waiter.is_alive() and len(outcome) == 2, outcome
        error, took = outcome
        assert isinstance(error, (CoordinationError, ConcurrencyLimitTimeout)), error
        assert took < timeout + socket_timeout + 1.0, f"a waiter with timeout={timeout:g} failed after {took:.1f} s"
        started = time.monotonic()  # a new call: its first store call times out, once
        with pytest.raises(CoordinationError):
            coordination.take_slot(B2B, timeout)
        took = time.monotonic() - started
        assert took < socket_timeout + 1.0, f"a new call failed after {took:.1f} s"
    finally:
        own_redis_server.process.send_signal(signal.SIGCONT)
        held.release()


def test_redis_down_at_open_is_the_typed_error() -> None:
    with pytest.raises(CoordinationError):
        open_store("redis://127.0.0.1:1/0", timeout=0.5)


@pytest.mark.slow
def test_with_fallback_redis_stopped_mid_run_warns_and_goes_on_in_process(own_redis_server: RedisServer) -> None:  # noqa: F811
    store = open_store(own_redis_server.url, fallback=True, timeout=1.0)
    assert isinstance(store, FallbackStore) and not store.degraded
    limiter = ConcurrencyLimiter(store, ttl=5)
    limiter.acquire(PERS, 1).release()
    own_redis_server.stop()
    with pytest.warns(RuntimeWarning, match="coordinating in this process only"):
        lease = limiter.acquire(PERS, 5)
    assert store.degraded
    with pytest.raises(ConcurrencyLimitTimeout):  # still limited, now within the process
        limiter.acquire(PERS, 0.2)
    lease.release()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per outage, not one per call
        assert SharedTokenCache(store).get(B2B, lambda: Token("local", time.time() + 60), 5).value == "local"


def test_with_fallback_redis_down_at_open_warns() -> None:
    with pytest.warns(RuntimeWarning, match="coordinating in this process only"):
        store = open_store("redis://127.0.0.1:1/0", fallback=True, timeout=0.5)
    held: List[Any] = [ConcurrencyLimiter(store).acquire(PERS, 1)]
    held.pop().release()


# -- Redis restarted empty under a held lease (issue 20, item 11) -----------------------------

@pytest.mark.slow
def test_a_lease_redis_lost_in_a_restart_is_taken_back_by_its_renewal(own_redis_server: RedisServer) -> None:  # noqa: F811
    ttl = 1.5  # renewed every 0.5 s
    holder = ConcurrencyLimiter(open_store(own_redis_server.url, timeout=1.0), ttl=ttl)
    lease = holder.acquire(PERS, 1)
    own_redis_server.restart()  # empty: the lease is gone from the store, the stream goes on
    assert eventually(lambda: holder.in_flight(PERS) == 1), "the renewal did not take the lease back"
    assert lease.held and not lease.lost
    other = ConcurrencyLimiter(open_store(own_redis_server.url, timeout=1.0), ttl=ttl)
    with pytest.raises(ConcurrencyLimitTimeout):  # the personal key's only slot is still the holder's
        other.acquire(PERS, timeout=2 * ttl)
    lease.release()
    other.acquire(PERS, timeout=2).release()


@pytest.mark.slow
def test_a_holder_whose_slot_was_taken_after_a_restart_learns_it_lost_it(own_redis_server: RedisServer) -> None:  # noqa: F811
    ttl = 30.0  # the heartbeat stays out of the way: this test renews by hand
    holder = ConcurrencyLimiter(open_store(own_redis_server.url, timeout=1.0), ttl=ttl)
    lease = holder.acquire(PERS, 1)
    own_redis_server.restart()
    # A caller that comes before the holder's next renewal (a third of the TTL) finds the slot free.
    newcomer = ConcurrencyLimiter(open_store(own_redis_server.url, timeout=1.0), ttl=ttl).acquire(PERS, 1)
    assert not lease.renew()
    assert lease.lost and not lease.held and newcomer.held and holder.in_flight(PERS) == 1
    newcomer.release()
