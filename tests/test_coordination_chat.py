"""gigachat_lite.chat() from many real processes sharing one key, with and without coordination (issue 11).

The emulator runs in the test process with a personal key's limit
(``max_in_flight=1``: a second request in flight gets 429); the clients are
spawned processes configured only through ``GIGACHAT_*`` variables, as
gunicorn or Celery workers are. ``GIGACHAT_MAX_RETRIES=0`` makes every 429
the client meets visible, so the uncoordinated run shows them.
"""

from __future__ import annotations

import base64
import gc
import json
import multiprocessing
import os
import pathlib
import signal
import time
from typing import Any, Dict, List

import pytest

import coordination_clients as clients
from gigachat_lite import ConcurrencyLimitTimeout, CoordinationError, RateLimitError, Session
from gigachat_lite.coordination import fleet
from gigachat_lite.emulator import Emulator, Fault
from redis_server import RedisServer, own_redis_server, redis_server, store_url  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.slow,  # fleets of processes
    pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only: the file backend needs fcntl"),
    pytest.mark.gigachat_emulator(max_in_flight=1, retry_after=1, delay=0.005, reply="a short reply, streamed"),
]

SPAWN = multiprocessing.get_context("spawn")


def fleet_env(emu: Emulator, coordination: str = "") -> Dict[str, str]:
    env = dict(emu.env(), GIGACHAT_MAX_RETRIES="0", GIGACHAT_TIMEOUT="20")
    if coordination:
        env["GIGACHAT_COORDINATION"] = coordination
    return env


def run_fleet(tmp_path: pathlib.Path, env: Dict[str, str], processes: int, threads: int, calls: int) -> Dict[str, int]:
    """Run the processes to the end (bounded) and add up what their calls met."""
    start_at = time.time() + 1.5  # spawned interpreters need about a second to import
    outs = [tmp_path / f"counts-{n}.json" for n in range(processes)]
    workers = [SPAWN.Process(target=clients.chat_many, args=(env, threads, calls, str(out), start_at)) for out in outs]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 60
    try:
        for worker in workers:
            worker.join(max(deadline - time.monotonic(), 0.1))
        assert all(w.exitcode == 0 for w in workers), [w.exitcode for w in workers]
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join(5)
    total: Dict[str, int] = {}
    for out in outs:
        for what, count in json.loads(out.read_text("utf-8")).items():
            total[what] = total.get(what, 0) + count
    return total


def test_a_coordinated_fleet_meets_no_429_and_fetches_one_token(emu: Emulator, store_url: str, tmp_path: pathlib.Path) -> None:
    counts = run_fleet(tmp_path, fleet_env(emu, store_url), processes=4, threads=3, calls=4)
    assert counts == {"ok": 48}
    assert emu.too_many_requests == 0
    assert emu.ledger.peak(emu.api_key) == 1
    assert emu.ledger.oauth_calls(emu.api_key) == 1  # one OAuth call for the token's lifetime, fleet-wide


def test_the_same_fleet_without_coordination_meets_429s(emu: Emulator, tmp_path: pathlib.Path) -> None:
    # The control: without it the coordinated test above could pass by luck of timing.
    counts = run_fleet(tmp_path, fleet_env(emu), processes=4, threads=3, calls=4)
    assert counts.get("429", 0) > 0 and emu.too_many_requests == counts["429"]
    assert emu.ledger.oauth_calls(emu.api_key) == 4  # one per process


def test_the_file_backend_under_ten_processes(emu: Emulator, tmp_path: pathlib.Path) -> None:
    url = "file://" + str(tmp_path / "coordination")
    counts = run_fleet(tmp_path, fleet_env(emu, url), processes=10, threads=2, calls=2)
    assert counts == {"ok": 40}
    assert emu.too_many_requests == 0 and emu.ledger.oauth_calls(emu.api_key) == 1
    folder = tmp_path / "coordination"
    assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
    assert all(oct(entry.stat().st_mode & 0o777) == oct(0o600) for entry in folder.iterdir() if entry.is_file())


def test_redis_holds_no_secret_but_the_token(emu: Emulator, redis_server: RedisServer, tmp_path: pathlib.Path) -> None:
    run_fleet(tmp_path, fleet_env(emu, redis_server.url), processes=2, threads=2, calls=2)
    dump = redis_server.dump()
    secret = base64.b64decode(emu.api_key).decode().split(":")[1]
    tokens = [name for name, values in dump.items() if any("access_token" in value for value in values)]
    assert tokens and all(name.split(":")[-1].startswith("tok.PERS.") for name in tokens)
    for name, values in dump.items():
        for text in [name, *values]:
            assert emu.api_key not in text and secret not in text
            assert emu.api_key[:12] not in text  # not even a piece of it


def test_a_worker_killed_mid_stream_frees_its_slot_within_the_lease_ttl(
    emu: Emulator, store_url: str, tmp_path: pathlib.Path
) -> None:
    emu.delay = 0.2  # the stream outlives the test unless the worker reads it
    emu.set_reply("word " * 200)
    ready = tmp_path / "ready"
    worker = SPAWN.Process(target=clients.stream_and_hang, args=(fleet_env(emu, store_url), 1.0, str(ready)))
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline and worker.is_alive(), "the worker never started streaming"
            time.sleep(0.02)
        emu.delay = 0.0
        emu.set_reply("after")
        impatient = Session(coordination=store_url, max_retries=0, timeout=0.2, **emu.client_config())
        # Waits for a slot up to its timeout: the lease's TTL (1 s) with room for a loaded machine.
        session = Session(coordination=store_url, max_retries=0, timeout=10, **emu.client_config())
        os.kill(worker.pid, signal.SIGKILL)
        # The dead worker's slot is taken until its lease expires: a call that cannot wait that long is refused.
        with pytest.raises(ConcurrencyLimitTimeout, match="GIGACHAT_API_PERS"):
            impatient.chat("hi", stream=False)
        assert session.chat("hi", stream=False).text == "after"  # then the slot frees, with nobody to give it back
        assert emu.too_many_requests == 0
    finally:
        if worker.is_alive():
            worker.kill()
        worker.join(5)


def test_redis_stopped_mid_run_raises_coordination_error(emu: Emulator, own_redis_server: RedisServer) -> None:
    session = Session(coordination=own_redis_server.url, max_retries=0, **emu.client_config())
    assert session.chat("hi", stream=False).text
    own_redis_server.stop()
    started = time.monotonic()
    with pytest.raises(CoordinationError) as caught:
        session.chat("hi", stream=False)
    assert time.monotonic() - started < 5  # never a hang
    assert emu.api_key not in str(caught.value)


def test_redis_stopped_mid_run_falls_back_with_a_warning_when_opted_in(emu: Emulator, own_redis_server: RedisServer) -> None:
    session = Session(coordination=own_redis_server.url, coordination_fallback=True, max_retries=0, **emu.client_config())
    assert session.chat("hi", stream=False).text
    own_redis_server.stop()
    with pytest.warns(RuntimeWarning, match="coordinating in this process only"):
        replies: List[Any] = [session.chat("hi", stream=False).text, "".join(session.chat("hi"))]
    assert all(replies)


# -- one day-long 429 (issue 20, item 9) and Redis restarted under a stream (item 11) ----------

def test_a_day_long_retry_after_does_not_stop_a_new_worker_for_a_day(
    emu: Emulator, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = "file://" + str(tmp_path / "coordination")
    emu.add_fault(Fault(path="chat", status=429, retry_after="86400", times=1))
    monkeypatch.setenv("GIGACHAT_MAX_COOL_DOWN", "1")
    with pytest.raises(RateLimitError):
        Session(coordination=store, max_retries=0, **emu.client_config()).chat("hi", stream=False)
    # A worker started afterwards, with the default cap, may wait 20 s for its call: it is served.
    out = tmp_path / "counts.json"
    worker = SPAWN.Process(target=clients.chat_many, args=(fleet_env(emu, store), 1, 1, str(out), time.time()))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0 and json.loads(out.read_text("utf-8")) == {"ok": 1}


def test_a_stream_keeps_its_slot_when_redis_restarts_empty(
    emu: Emulator, own_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setattr(fleet, "LEASE_TTL", 1.5)  # renewed every 0.5 s
    emu.delay = 0.05
    emu.set_reply("word " * 200)  # a stream of about 6 s
    streaming = Session(coordination=own_redis_server.url, max_retries=0, **emu.client_config())
    stream = streaming.chat("hi")
    assert next(iter(stream))
    own_redis_server.restart()  # empty: the stream's lease is gone from Redis
    limiter = fleet.coordination_for(own_redis_server.url).limiter
    key = fleet.identity(emu.auth_url, emu.api_key, None, "GIGACHAT_API_PERS")
    deadline = time.monotonic() + 10
    while limiter.in_flight(key) != 1:  # the holder's renewal takes it back
        assert time.monotonic() < deadline, "the stream's lease was never taken back"
        time.sleep(0.02)
    second = Session(coordination=own_redis_server.url, max_retries=0, timeout=1.0, **emu.client_config())
    with pytest.raises(ConcurrencyLimitTimeout):
        second.chat("hi", stream=False)
    assert emu.too_many_requests == 0  # before: the second call took the slot and met a 429
    stream.close()
    assert limiter.in_flight(key) == 0


def test_a_streamed_response_dropped_unclosed_gives_its_slot_back_without_the_cycle_collector() -> None:
    with Emulator(max_in_flight=1, reply="x " * 50, piece_size=2, delay=0.01) as emu:
        session = Session(**emu.client_config(), coordination="memory://", timeout=3)
        body = {"model": "GigaChat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        gc.disable()  # a slot that only the cycle collector frees would stay taken
        try:
            response = session.call("POST", "/chat/completions", json=body, stream=True)
            del response  # the only slot of a personal key, held by a response nobody closed
            reply = session.chat("again", stream=False)  # waits for the slot: 3 s at most
        finally:
            gc.enable()
        assert reply.text
