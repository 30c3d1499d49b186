"""The coordination figures of docs/reliability.rst (issue 20, items 9-11): ``python tests/coordination_reliability.py``.

Each scenario is the misbehaviour its test in ``test_coordination*.py`` pins,
measured against the emulator (and a redis-server, when installed) on
127.0.0.1. :func:`figures` returns ``(scenario, figure)`` rows, so
``scripts/reliability.py`` can add them as one more section; run as a script,
this prints them as a table.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, List, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import gigachat_lite  # noqa: E402
from gigachat_lite import RateLimitError, Session  # noqa: E402
from gigachat_lite.coordination import ConcurrencyLimiter, ConcurrencyLimitTimeout, CoolDown, fleet, open_store  # noqa: E402
from gigachat_lite.emulator import Emulator, Fault  # noqa: E402

Rows = List[Tuple[str, Any]]
PERS = ("https://ngw.test:9443/api/v2/oauth", "reliability-key", "GIGACHAT_API_PERS")


def _key(emu: Emulator) -> Any:
    return fleet.identity(emu.auth_url, emu.api_key, None, "GIGACHAT_API_PERS")


def day_long_retry_after(folder: pathlib.Path) -> Rows:
    """Item 9: one 429 with ``Retry-After: 86400`` pauses the fleet ``max_cool_down`` at most."""
    store = "file://" + str(folder / "pause")
    with Emulator(max_in_flight=1) as emu:
        emu.add_fault(Fault(path="chat", status=429, retry_after="86400", times=2))
        told = None
        try:
            Session(coordination=store, max_retries=0, **emu.client_config()).chat("hi", stream=False)
        except RateLimitError as exc:
            told = exc.retry_after
        default_pause = fleet.coordination_for(store).cooldown.remaining(_key(emu))
        fleet.coordination_for(store).store.delete(_key(emu).name("cool"))
        try:
            Session(coordination=store, max_retries=0, max_cool_down=1, **emu.client_config()).chat("hi", stream=False)
        except RateLimitError:
            pass
        # A worker started afterwards, in its own process, which may wait 10 s for its call.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIGACHAT_")}
        env.update(emu.env(), GIGACHAT_COORDINATION=store, GIGACHAT_TIMEOUT="10", PYTHONPATH=str(ROOT))
        code = ("import time, gigachat_lite; t = time.monotonic(); r = gigachat_lite.chat('hi', stream=False);"
                "print(round(time.monotonic() - t, 2), bool(r.text))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        new_worker = out.stdout.strip() or f"failed: {out.stderr.strip().splitlines()[-1:]}"
    return [
        ("429 Retry-After: 86400 (max_cool_down default)", f"fleet pauses {default_pause:.0f} s; the caller's retry_after: {told:.0f}"),
        ("  a worker started after it (pause capped at 1 s, timeout 10 s)",
         f"served; its call waited {new_worker.split()[0]} s" if new_worker.endswith("True") else new_worker),
    ]


def stepped_clock(folder: pathlib.Path) -> Rows:
    """Item 10: the file store's entries keep their durations whatever the wall clock does."""
    store = open_store("file://" + str(folder / "clock"))
    real = time.time
    CoolDown(store).cool_down(PERS, 2)
    limiter = ConcurrencyLimiter(store, ttl=10)
    lease = limiter.acquire(PERS, 1)
    try:
        time.time = lambda: real() - 3600  # type: ignore[assignment]
        back = CoolDown(store).remaining(PERS)
        time.time = lambda: real() + 3600  # type: ignore[assignment]
        try:
            ConcurrencyLimiter(store, ttl=10).acquire(PERS, 0.2).release()
            forward = "freed: a second caller took it"
        except ConcurrencyLimitTimeout:
            forward = "still held (a second caller waits)"
    finally:
        time.time = real  # type: ignore[assignment]
        lease.release()
    return [("file store, 2 s pause, wall clock set back 1 h", f"{back:.1f} s left"),
            ("file store, held slot, wall clock set forward 1 h", forward)]


def redis_restart(folder: pathlib.Path) -> Rows:
    """Item 11: Redis restarted empty while a worker streams: its renewal takes the lease back."""
    try:
        from redis_server import REDIS_SERVER, RedisServer
    except ImportError:  # the redis package is missing
        return [("Redis restarted empty under a stream", "skipped: pip install redis")]
    if not os.path.exists(REDIS_SERVER):
        return [("Redis restarted empty under a stream", "skipped: no redis-server")]
    server = RedisServer(folder)
    saved = fleet.LEASE_TTL
    fleet.LEASE_TTL = 1.5  # renewed every 0.5 s
    try:
        with Emulator(max_in_flight=1, delay=0.05, reply="word " * 200) as emu:
            stream = Session(coordination=server.url, max_retries=0, **emu.client_config()).chat("hi")
            next(iter(stream))
            server.restart()
            restarted = time.monotonic()
            limiter = fleet.coordination_for(server.url).limiter
            while limiter.in_flight(_key(emu)) != 1 and time.monotonic() - restarted < 10:
                time.sleep(0.01)
            taken_back = time.monotonic() - restarted
            second = Session(coordination=server.url, max_retries=0, timeout=1.0, **emu.client_config())
            try:
                second.chat("hi", stream=False)
                outcome = "served: two in flight"
            except ConcurrencyLimitTimeout:
                outcome = "ConcurrencyLimitTimeout"
            except RateLimitError:
                outcome = "sent, and met a 429"
            stream.close()
            refused = emu.too_many_requests
    finally:
        fleet.LEASE_TTL = saved
        gigachat_lite.reset()
        server.stop()
    return [("Redis restarted empty under a stream (lease TTL 1.5 s)", f"lease taken back after {taken_back:.1f} s"),
            ("  a second call on the personal key meanwhile", f"{outcome}, {refused} 429s at the server")]


def figures() -> Rows:
    """Every row, each scenario in a fresh temporary folder."""
    rows: Rows = []
    sections: List[Callable[[pathlib.Path], Rows]] = [day_long_retry_after, stepped_clock, redis_restart]
    for section in sections:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="gigachat_lite-coordination-"))
        try:
            rows += section(folder)
        finally:
            gigachat_lite.reset()
            shutil.rmtree(folder, ignore_errors=True)
    return rows


if __name__ == "__main__":
    table = figures()
    width = max(len(name) for name, _ in table)
    value_width = max(len(str(value)) for _, value in table)
    rule = "=" * width + "  " + "=" * value_width
    print("\n".join([rule, f"{'scenario':<{width}}  figure", rule]
                    + [f"{name:<{width}}  {value}" for name, value in table] + [rule]))
