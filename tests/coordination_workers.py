"""Worker processes for the cross-process coordination tests (run under the spawn start method).

Each function runs in a child process and opens the store from its URL, as a
separate gunicorn or Celery worker would.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, List, Tuple

from gigachat_lite.auth import Token
from gigachat_lite.coordination import ConcurrencyLimiter, SharedTokenCache, open_store

Key = Tuple[str, str, str]


def contend(url: str, key: Key, threads: int, rounds: int, hold: float, inside: Any, peak: Any, done: Any, errors: Any) -> None:
    """``threads`` threads each take the slot ``rounds`` times and record how many are inside at once."""
    limiter = ConcurrencyLimiter(open_store(url), ttl=5.0)

    def run() -> None:
        for _ in range(rounds):
            try:
                lease = limiter.acquire(key, timeout=60)
            except Exception as exc:  # reported to the parent, which fails the test
                with errors.get_lock():
                    errors.value += 1
                print("worker error:", type(exc).__name__, exc)
                continue
            try:
                with inside.get_lock():
                    inside.value += 1
                    with peak.get_lock():
                        peak.value = max(peak.value, inside.value)
                time.sleep(hold)
                with inside.get_lock():
                    inside.value -= 1
            finally:
                lease.release()
            with done.get_lock():
                done.value += 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def fetch_tokens(url: str, key: Key, threads: int, calls: int, log_path: str, seen_path: str, start_at: float) -> None:
    """Many threads ask for the token; each OAuth "fetch" appends a line to ``log_path``."""
    cache = SharedTokenCache(open_store(url), lock_ttl=10.0)

    def fetch() -> Token:
        time.sleep(0.2)  # a slow OAuth call widens the window for duplicate fetches
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()}\n")
        return Token(f"token-{os.getpid()}-{time.time()}", time.time() + 60)

    seen: List[str] = []

    def run() -> None:
        for _ in range(calls):
            seen.append(cache.get(key, fetch, margin=5).value)
            time.sleep(0.01)

    time.sleep(max(start_at - time.time(), 0))  # all processes start asking together
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with open(seen_path, "a", encoding="utf-8") as out:
        out.write("".join(value + "\n" for value in set(seen)))


def hold_lease(url: str, key: Key, ttl: float, ready_path: str) -> None:
    """Take the slot, say so, then hang until killed (its renewer keeps the lease alive meanwhile)."""
    lease = ConcurrencyLimiter(open_store(url), ttl=ttl).acquire(key, timeout=10)
    with open(ready_path, "w", encoding="utf-8") as ready:
        ready.write(lease.holder)
    time.sleep(120)


def hang_in_fetch(url: str, key: Key, lock_ttl: float, ready_path: str) -> None:
    """Take the token-fetch lock and hang inside the OAuth call until killed."""
    cache = SharedTokenCache(open_store(url), lock_ttl=lock_ttl)

    def fetch() -> Token:
        with open(ready_path, "w", encoding="utf-8") as ready:
            ready.write("fetching")
        time.sleep(120)
        raise AssertionError("not reached")

    cache.get(key, fetch, margin=5)


def take_many(url: str, name: str, count: int, start_at: float) -> None:
    """Take ``count`` leases under distinct holders as fast as possible (no limit reached)."""
    store = open_store(url)
    time.sleep(max(start_at - time.time(), 0))
    for number in range(count):
        assert store.lease_acquire(name, f"{os.getpid()}-{number}", 10**6, 60.0)


def wait_in_line(url: str, key: Key, number: int, ttl: float, log_path: str) -> None:
    """Queue for the slot; once served, append ``number`` to ``log_path`` (under the slot, so appends never interleave)."""
    with ConcurrencyLimiter(open_store(url), ttl=ttl).acquire(key, timeout=60):
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"{number} {time.time()!r}\n")
        time.sleep(0.02)
