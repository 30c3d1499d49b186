"""Coordination across real processes, for the file and Redis backends (issue 11).

Workers are spawned processes (tests/coordination_workers.py) that open the
store from its URL, like separate gunicorn or Celery workers. Every wait is
bounded: short TTLs, and each process is joined with a timeout.
"""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

import coordination_workers as workers
from gigachat_lite.auth import Token
from gigachat_lite.coordination import ConcurrencyLimiter, FileStore, SharedTokenCache, open_store
from redis_server import RedisServer, redis_server, store_url  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only: the file backend needs fcntl"),
              pytest.mark.slow]  # fleets of processes

SPAWN = multiprocessing.get_context("spawn")  # no fork with threads alive; like real separate workers
AUTH = "https://ngw.test:9443/api/v2/oauth"


@pytest.fixture
def key(request: pytest.FixtureRequest) -> Any:
    # A distinct key per test, so tests sharing one Redis never see each other's entries.
    return (AUTH, "fleet-key-" + request.node.name, "GIGACHAT_API_PERS")


def run_all(processes: List[Any], timeout: float) -> None:
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.join(max(deadline - time.monotonic(), 0.1))
        assert not any(p.is_alive() for p in processes), "a worker did not finish in time"
        assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(5)


def wait_for(path: pathlib.Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.fixture
def spawned() -> Iterator[Callable[..., Any]]:
    """Start one worker process; any still alive at the end is killed."""
    started: List[Any] = []

    def start(target: Callable[..., None], *args: Any) -> Any:
        process = SPAWN.Process(target=target, args=args, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.is_alive():
            process.kill()
        process.join(5)


def test_processes_and_threads_never_exceed_a_limit_of_one(store_url: str, key: Any) -> None:
    processes, threads, rounds = 5, 3, 3
    inside, peak, done, errors = (SPAWN.Value("i", 0) for _ in range(4))
    run_all(
        [SPAWN.Process(target=workers.contend, args=(store_url, key, threads, rounds, 0.01, inside, peak, done, errors))
         for _ in range(processes)],
        timeout=120,
    )
    assert errors.value == 0
    assert done.value == processes * threads * rounds  # everyone got the slot in the end
    assert peak.value == 1  # and never two at once
    assert ConcurrencyLimiter(open_store(store_url)).in_flight(key) == 0  # every lease was released


def test_concurrent_updates_from_processes_are_never_lost(store_url: str) -> None:
    # The store's contract underneath every policy: each operation is atomic
    # across processes. Without the file lock, read-modify-writes lose entries.
    processes, count = 4, 150
    start_at = time.time() + 1.5
    run_all([SPAWN.Process(target=workers.take_many, args=(store_url, "atomicity", count, start_at)) for _ in range(processes)], 120)
    assert open_store(store_url).lease_count("atomicity") == processes * count


def test_one_oauth_fetch_for_the_whole_fleet(store_url: str, key: Any, tmp_path: pathlib.Path) -> None:
    log, seen = tmp_path / "fetches.log", tmp_path / "seen.log"
    start_at = time.time() + 2.0
    run_all(
        [SPAWN.Process(target=workers.fetch_tokens, args=(store_url, key, 4, 10, str(log), str(seen), start_at))
         for _ in range(4)],
        timeout=90,
    )
    assert len(log.read_text().splitlines()) == 1  # 4 processes x 4 threads x 10 calls, one OAuth call
    tokens = seen.read_text().splitlines()
    assert len(tokens) == 4 and len(set(tokens)) == 1  # and every process got that token
    # A process that joins later reads the token from the store, without fetching.
    cache = SharedTokenCache(open_store(store_url))
    assert cache.get(key, lambda: pytest.fail("fetched again"), margin=5).value == tokens[0]
    assert cache.fetches == 0


def test_a_killed_workers_slot_frees_within_the_lease_ttl(
    store_url: str, key: Any, tmp_path: pathlib.Path, spawned: Callable[..., Any]
) -> None:
    ttl = 1.5
    ready = tmp_path / "ready"
    holder = spawned(workers.hold_lease, store_url, key, ttl, str(ready))
    wait_for(ready, 30)
    limiter = ConcurrencyLimiter(open_store(store_url), ttl=ttl)
    # Alive, it keeps its slot past several TTLs: its heartbeat renews the lease.
    time.sleep(ttl * 2)
    with pytest.raises(Exception, match="timed out"):
        limiter.acquire(key, timeout=0.3)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(5)
    # Nobody gives the slot back: it frees when the lease expires (a wait of up to the TTL;
    # the timeout leaves room for a loaded machine, it is not the figure under test).
    lease = limiter.acquire(key, timeout=ttl + 10)
    assert lease.held
    lease.release()


def test_a_dead_fetch_lock_holder_blocks_the_token_only_until_the_lock_ttl(
    store_url: str, key: Any, tmp_path: pathlib.Path, spawned: Callable[..., Any]
) -> None:
    lock_ttl = 2.0
    ready = tmp_path / "ready"
    hung = spawned(workers.hang_in_fetch, store_url, key, lock_ttl, str(ready))
    wait_for(ready, 30)
    os.kill(hung.pid, signal.SIGKILL)
    hung.join(5)
    killed = time.monotonic()
    fetched: List[float] = []

    def fetch() -> Token:
        fetched.append(time.monotonic() - killed)
        return Token("fresh-token", time.time() + 60)

    token = SharedTokenCache(open_store(store_url), lock_ttl=lock_ttl).get(key, fetch, margin=5)
    assert token.value == "fresh-token"
    assert len(fetched) == 1
    # It waited for the dead holder's lock (no duplicate fetch while it might live) but not past its TTL.
    assert 0.5 <= fetched[0] <= lock_ttl + 1.0


def test_a_forked_child_does_not_release_its_parents_lease(store_url: str, key: Any) -> None:
    limiter = ConcurrencyLimiter(open_store(store_url), ttl=5.0)
    lease = limiter.acquire(key, timeout=1)
    pid = os.fork()
    if pid == 0:  # the child: what a normal exit (atexit finalizers) or a stray release() would do
        lease.release()
        os._exit(0)
    os.waitpid(pid, 0)
    assert limiter.in_flight(key) == 1  # still the parent's
    lease.release()
    assert limiter.in_flight(key) == 0


# -- first come, first served across processes (issue 24) ------------------------------------

def eventually(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_processes_are_served_in_arrival_order(
    store_url: str, key: Any, tmp_path: pathlib.Path, spawned: Callable[..., Any]
) -> None:
    limiter = ConcurrencyLimiter(open_store(store_url), ttl=5.0)
    held = limiter.acquire(key, timeout=1)
    log = tmp_path / "served.log"
    waiters = []
    for number in range(5):
        waiters.append(spawned(workers.wait_in_line, store_url, key, number, 5.0, str(log)))
        # The next process starts only once this one is queued: arrival order is known.
        assert eventually(lambda: limiter.waiting(key) == number + 1), f"waiter {number} never queued"
    held.release()
    for waiter in waiters:
        waiter.join(60)
    assert [w.exitcode for w in waiters] == [0] * 5
    assert [int(line.split()[0]) for line in log.read_text().splitlines()] == list(range(5))
    assert limiter.in_flight(key) == 0 and limiter.waiting(key) == 0


def test_a_killed_waiter_holds_up_the_queue_no_longer_than_the_lease_ttl(
    store_url: str, key: Any, tmp_path: pathlib.Path, spawned: Callable[..., Any]
) -> None:
    ttl = 2.0
    limiter = ConcurrencyLimiter(open_store(store_url), ttl=ttl)
    held = limiter.acquire(key, timeout=1)
    log = tmp_path / "served.log"
    doomed = spawned(workers.wait_in_line, store_url, key, 0, ttl, str(log))
    assert eventually(lambda: limiter.waiting(key) == 1)
    behind = spawned(workers.wait_in_line, store_url, key, 1, ttl, str(log))
    assert eventually(lambda: limiter.waiting(key) == 2)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join(5)
    killed = time.time()  # the worker stamps its turn with time.time() too
    held.release()  # the dead waiter is first in line
    behind.join(30)
    assert behind.exitcode == 0 and [line.split()[0] for line in log.read_text().splitlines()] == ["1"]
    served_after = float(log.read_text().split()[1]) - killed
    # The file store sees the dead waiter's pipe has no reader and skips it at once; Redis
    # waits for its place to expire: within the TTL, plus scheduling slack.
    assert served_after <= ttl + 1.5


# -- a fork in the middle of things ------------------------------------------------------------

def _exit_code(pid: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1  # hung


@pytest.mark.parametrize("where", ["memory", "shared"])
def test_a_child_forked_while_a_thread_fetches_the_token_gets_one(where: str, store_url: str, key: Any) -> None:
    cache = SharedTokenCache(open_store("memory://" if where == "memory" else store_url))
    fetching, finish = threading.Event(), threading.Event()

    def parents_fetch() -> Token:
        fetching.set()
        finish.wait(10)
        return Token("parent-token", time.time() + 60)

    thread = threading.Thread(target=cache.get, args=(key, parents_fetch, 5.0))
    thread.start()
    assert fetching.wait(5)
    pid = os.fork()
    if pid == 0:  # the parent's fetching thread is not here; its locks were held at the fork
        try:
            token = cache.get(key, lambda: Token("child-token", time.time() + 60), 5.0)
            os._exit(0 if token.value in ("child-token", "parent-token") else 1)
        finally:
            os._exit(2)
    finish.set()
    thread.join(10)
    assert _exit_code(pid, 20) == 0


def test_a_child_forked_while_a_thread_holds_a_file_lock_does_not_keep_it(tmp_path: pathlib.Path) -> None:
    store = FileStore(str(tmp_path / "coordination"), timeout=2.0)
    stop, errors = threading.Event(), []

    def busy() -> None:  # keeps the entry's lock taken most of the time
        while not stop.is_set():
            try:
                store.set("tok.PERS.forks", "value", 60)
            except Exception as exc:  # noqa: BLE001  the failure under test
                errors.append(exc)
                return

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for thread in threads:
        thread.start()
    children = []
    try:
        for _ in range(20):  # idle children, as a pre-forking server keeps: with the bug, some hold the lock
            time.sleep(0.02)
            pid = os.fork()
            if pid == 0:
                time.sleep(4)
                os._exit(0)
            children.append(pid)
        time.sleep(3)  # longer than the store's lock timeout
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert errors == []
