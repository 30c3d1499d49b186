"""Coordination wired into the client (issue 11): settings, where leases are taken and given back, 429 cool-downs.

In one process (``memory://``, the in-process store) against the emulator
with a personal key's limit; tests/test_coordination_chat.py runs the same
across real processes through files and Redis.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

import gigachat_lite
from gigachat_lite import Config, ConcurrencyLimitTimeout, GigaChat, RateLimitError, Session, aio, chat
from gigachat_lite.coordination import coordination_for
from gigachat_lite.coordination.fleet import identity
from gigachat_lite.emulator import Emulator, Fault

MEMORY = "memory://"


# 0.02 s between events and a long reply: a stream stays in flight while the test looks.
pytestmark = pytest.mark.gigachat_emulator(max_in_flight=1, retry_after=1, delay=0.02, reply="word " * 20)


def in_flight(emu: Emulator) -> int:
    """Leases held on the emulator's key in this process's store."""
    return coordination_for(MEMORY).limiter.in_flight(identity(emu.auth_url, emu.api_key, None, "GIGACHAT_API_PERS"))


def eventually(condition, seconds: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_settings_are_checked_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="coordination"):
        Config.resolve(api_key="k", coordination="ftp://host/x")
    with pytest.raises(ValueError, match="max_concurrency"):
        Config.resolve(api_key="k", max_concurrency=0)
    monkeypatch.setenv("GIGACHAT_COORDINATION", "redis://:hunter2@127.0.0.1:1/0")
    monkeypatch.setenv("GIGACHAT_COORDINATION_FALLBACK", "yes")
    monkeypatch.setenv("GIGACHAT_MAX_CONCURRENCY", "3")
    config = Config.resolve(api_key="k")
    assert (config.coordination_fallback, config.max_concurrency) == (True, 3)
    assert "hunter2" not in repr(config) and "redis://:***@127.0.0.1:1/0" in repr(config)
    unset = Config.resolve(api_key="k", env={})
    assert (unset.coordination, unset.coordination_fallback, unset.max_concurrency) == (None, False, None)


@pytest.mark.slow
def test_unset_costs_nothing() -> None:
    code = (
        "import sys, gigachat_lite; s = gigachat_lite.Session(api_key='k'); gigachat_lite.reset();"
        "print(sorted(m for m in sys.modules if 'coordination' in m or m == 'uuid'))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIGACHAT_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.slow
def test_threads_of_one_process_share_the_limit(emu: Emulator) -> None:
    config = dict(emu.client_config(), max_retries=0)
    emu.set_reply("short")
    failures = []

    def run() -> None:
        for _ in range(3):
            try:
                "".join(chat("hi", coordination=MEMORY, **config))
            except gigachat_lite.GigaChatError as exc:
                failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == [] and emu.too_many_requests == 0 and emu.ledger.peak(emu.api_key) == 1
    assert in_flight(emu) == 0


@pytest.mark.slow
def test_a_stream_holds_its_slot_until_read_to_the_end(emu: Emulator) -> None:
    stream = chat("hi", coordination=MEMORY, **emu.client_config())
    assert in_flight(emu) == 1
    assert "".join(stream)
    assert in_flight(emu) == 0


@pytest.mark.slow
@pytest.mark.parametrize("how", ["close", "with", "close_unstarted", "drop", "drop_unstarted", "cut"])
def test_a_stream_gives_its_slot_back_however_it_ends(emu: Emulator, how: str) -> None:
    session = Session(coordination=MEMORY, max_retries=0, **emu.client_config())
    if how == "cut":
        emu.add_fault(Fault(path="chat", cut_after=2, times=1))
    stream = session.chat("hi")
    assert in_flight(emu) == 1
    if how == "close":
        next(stream)
        stream.close()
    elif how == "with":
        with stream:
            next(stream)
    elif how == "close_unstarted":
        stream.close()
    elif how in ("drop", "drop_unstarted"):
        if how == "drop":
            next(stream)
        del stream
        gc.collect()
    else:
        with pytest.raises(gigachat_lite.StreamError):
            "".join(stream)
    assert eventually(lambda: in_flight(emu) == 0)
    # The server notices a dropped connection only at its next write: a call made at once
    # could still meet its count (a retry would absorb that 429; this session makes none).
    assert eventually(lambda: emu.ledger.in_flight(emu.api_key) == 0)
    assert session.chat("hi", stream=False).text
    assert emu.too_many_requests == 0


def test_an_error_reply_gives_the_slot_back(emu: Emulator) -> None:
    emu.add_fault(Fault(path="chat", status=500, times=1))
    with pytest.raises(gigachat_lite.ServerError):
        chat("hi", stream=False, coordination=MEMORY, max_retries=0, **emu.client_config())
    assert in_flight(emu) == 0


@pytest.mark.slow
def test_waiting_for_a_slot_respects_the_timeout(emu: Emulator) -> None:
    stream = chat("hi", coordination=MEMORY, **emu.client_config())
    started = time.monotonic()
    with pytest.raises(ConcurrencyLimitTimeout, match="GIGACHAT_API_PERS.*limit 1") as caught:
        chat("hi", stream=False, coordination=MEMORY, timeout=0.3, **emu.client_config())
    assert time.monotonic() - started > 0.25  # it waited its timeout (a lower bound only)
    assert emu.api_key not in str(caught.value)
    stream.close()


def test_a_waiting_call_fetches_its_token_before_its_turn(emu: Emulator) -> None:
    # The request is prepared before the slot is taken: the key sits idle for none of that work.
    emu.token_ttl = 1.0  # stale after half its life: the next call fetches a token of its own
    holder = chat("hi", coordination=MEMORY, **emu.client_config())
    assert in_flight(emu) == 1 and emu.ledger.oauth_calls(emu.api_key) == 1
    time.sleep(0.6)
    replies: list = []
    waiter = threading.Thread(target=lambda: replies.append(
        chat("hi", stream=False, coordination=MEMORY, **emu.client_config()).text))
    waiter.start()
    try:
        assert eventually(lambda: emu.ledger.oauth_calls(emu.api_key) >= 2, seconds=5)
        assert not replies and in_flight(emu) == 1  # fetched while the holder still streams
    finally:
        assert "".join(holder)
        waiter.join(15)
    assert replies and replies[0] and emu.too_many_requests == 0


def test_a_call_whose_token_cannot_be_had_fails_without_waiting_its_turn(emu: Emulator) -> None:
    emu.token_ttl = 1.0
    holder = chat("hi", coordination=MEMORY, **emu.client_config())
    time.sleep(0.6)  # the token is stale: the next call must fetch one, and is refused it
    emu.add_fault(Fault(path="oauth", unauthorized=True))
    try:
        with pytest.raises(gigachat_lite.AuthenticationError):  # not ConcurrencyLimitTimeout: no turn was awaited
            chat("hi", stream=False, coordination=MEMORY, timeout=2, **emu.client_config())
        assert in_flight(emu) == 1
    finally:
        holder.close()
    assert in_flight(emu) == 0


@pytest.mark.slow
def test_max_concurrency_overrides_the_scope_default(emu: Emulator) -> None:
    emu.max_in_flight = 2
    first = chat("hi", coordination=MEMORY, max_concurrency=2, **emu.client_config())
    second = chat("hi", coordination=MEMORY, max_concurrency=2, **emu.client_config())
    assert "".join(first) and "".join(second) and emu.ledger.peak(emu.api_key) == 2


def test_a_429_cools_the_key_down_for_every_session(emu: Emulator) -> None:
    emu.add_fault(Fault(path="chat", status=429, retry_after="2", times=1))
    with pytest.raises(RateLimitError):
        chat("hi", stream=False, coordination=MEMORY, max_retries=0, **emu.client_config())
    sent = len(emu.requests)
    # Another session on the same key, which may wait only 0.5 s: refused at once, nothing sent.
    other = Session(coordination=MEMORY, timeout=0.5, **emu.client_config())
    with pytest.raises(RateLimitError, match="wait") as caught:
        other.chat("hi", stream=False)
    assert caught.value.retry_after is not None and 1.0 < caught.value.retry_after <= 2.0
    assert len(emu.requests) == sent


def pause_left(emu: Emulator) -> float:
    return coordination_for(MEMORY).cooldown.remaining(identity(emu.auth_url, emu.api_key, None, "GIGACHAT_API_PERS"))


@pytest.mark.slow
def test_a_day_long_retry_after_pauses_the_fleet_for_max_cool_down_at_most(emu: Emulator) -> None:
    emu.add_fault(Fault(path="chat", status=429, retry_after="86400", times=1))
    with pytest.raises(RateLimitError) as caught:
        chat("hi", stream=False, coordination=MEMORY, max_retries=0, max_cool_down=1, **emu.client_config())
    assert caught.value.retry_after == 86400  # the caller that met the 429 hears what the server said
    assert 0 < pause_left(emu) <= 1  # the others pause 1 s, not a day
    # Another session, which may wait 10 s: served once the capped pause is over (before: refused at once).
    other = Session(coordination=MEMORY, timeout=10, **emu.client_config())
    assert other.chat("hi", stream=False).text


def test_the_shared_pause_is_capped_at_30_s_unless_set(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Config.resolve(api_key="k").max_cool_down == 30.0
    monkeypatch.setenv("GIGACHAT_MAX_COOL_DOWN", "2.5")
    assert Config.resolve(api_key="k").max_cool_down == 2.5
    assert Config.resolve(api_key="k", max_cool_down=0).max_cool_down == 0.0  # no shared pause at all
    for bad in (-1, "soon", float("nan"), float("inf")):
        with pytest.raises(ValueError, match="max_cool_down"):
            Config.resolve(api_key="k", max_cool_down=bad)
    monkeypatch.delenv("GIGACHAT_MAX_COOL_DOWN")
    emu.add_fault(Fault(path="chat", status=429, retry_after="86400", times=1))
    with pytest.raises(RateLimitError):
        chat("hi", stream=False, coordination=MEMORY, max_retries=0, **emu.client_config())
    assert 25 < pause_left(emu) <= 30


@pytest.mark.slow
def test_a_token_only_session_is_limited_by_a_digest_of_its_token(emu: Emulator) -> None:
    session = Session(**emu.client_config())
    session.models()
    assert session.token is not None
    value = session.token.value
    only = Session(access_token=value, base_url=emu.base_url, auth_url=emu.auth_url, coordination=MEMORY)
    stream = only.chat("hi")
    key = identity(emu.auth_url, None, value, "GIGACHAT_API_PERS")
    assert coordination_for(MEMORY).limiter.in_flight(key) == 1
    assert value not in key.name("slots") and value not in repr(key)
    assert "".join(stream)
    assert coordination_for(MEMORY).limiter.in_flight(key) == 0


def test_aio_cancellation_gives_the_slot_back(emu: Emulator) -> None:
    async def main() -> None:
        stream = aio.chat("hi", coordination=MEMORY, **emu.client_config())
        assert await stream.__anext__()

        async def read_on() -> None:
            async for _ in stream:
                await asyncio.sleep(0.05)

        task = asyncio.ensure_future(read_on())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await stream.aclose()

    asyncio.run(main())
    assert eventually(lambda: in_flight(emu) == 0)


def test_the_gpt4free_provider_coordinates_from_the_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIGACHAT_COORDINATION", MEMORY)
    monkeypatch.setenv("GIGACHAT_BASE_URL", emu.base_url)
    monkeypatch.setenv("GIGACHAT_AUTH_URL", emu.auth_url)
    generator = GigaChat.create_completion("GigaChat", [{"role": "user", "content": "hi"}], api_key=emu.api_key)
    assert next(generator)
    assert in_flight(emu) == 1
    generator.close()
    assert eventually(lambda: in_flight(emu) == 0)


@pytest.mark.slow
def test_the_cli_coordinates_through_the_environment(emu: Emulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "coordination"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIGACHAT_")}
    env.update(emu.env(), GIGACHAT_COORDINATION="file://" + str(folder), GIGACHAT_LITE_CACHE_DIR=str(tmp_path))
    if os.environ.get("PYTHONPATH") is None:
        env["PYTHONPATH"] = os.getcwd()
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "gigachat_lite", "chat", "hi"], capture_output=True, text=True,
                             env=env, stdin=subprocess.DEVNULL, timeout=30)
        assert out.returncode == 0 and out.stdout.strip(), out.stderr
    assert any(entry.name.startswith("tok.PERS.") for entry in folder.iterdir())
    assert emu.ledger.oauth_calls(emu.api_key) == 1  # the second run took the first one's token from the folder


@pytest.mark.slow
def test_a_dropped_stream_takes_no_lock_to_give_its_slot_back(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # The cycle collector may finalise a stream inside any call, even one holding the
    # store's own (non-reentrant) lock: releasing there directly would deadlock.
    # Every operation of the store is made to take one (non-reentrant) lock of the
    # test's: a finaliser that went to the store would wait on its own thread.
    store = coordination_for(MEMORY).store
    gate = threading.Lock()
    for name in ("get", "set", "add", "delete", "extend", "remaining", "lease_acquire", "lease_renew",
                 "lease_release", "lease_count", "rate_hit"):
        def through_the_gate(*args: Any, _operation: Any = getattr(store, name), **kwargs: Any) -> Any:
            with gate:
                return _operation(*args, **kwargs)

        monkeypatch.setattr(store, name, through_the_gate)
    finished = threading.Event()

    def drop_while_holding_the_lock() -> None:
        stream = chat("hi", coordination=MEMORY, **emu.client_config())
        next(stream)
        assert in_flight(emu) == 1
        with gate:  # as if inside a store operation when the cycle collector runs
            del stream
            gc.collect()
        finished.set()

    worker = threading.Thread(target=drop_while_holding_the_lock, daemon=True)
    worker.start()
    assert finished.wait(5), "dropping a stream blocked on the store's lock"
    assert eventually(lambda: in_flight(emu) == 0)
