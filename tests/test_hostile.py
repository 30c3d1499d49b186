"""Hostile conditions: streams dropped mid-way, forks, compression, servers that misbehave on purpose."""

from __future__ import annotations

import gc
import os
import random
import sys
import threading
from typing import Any

import pytest

from gigachat_lite import Session
from gigachat_lite.emulator import Emulator

from reliability_support import guarded


pytestmark = pytest.mark.gigachat_emulator(piece_size=2)


# What queue.Queue.get/put call while holding the queue's mutex (urllib3's pool is a LifoQueue).
_UNDER_QUEUE_LOCK = ("_get", "_put", "_qsize")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_streams_dropped_in_cycles_never_deadlock_and_leak_nothing(emu: Emulator) -> None:
    # Dropped inside a cycle of the caller's, a stream is freed only by the cycle
    # collector, which a profile hook runs at random calls: some of them inside
    # urllib3's pool, under its lock. A finaliser that returned the connection
    # there waited on itself forever (it hung after ~200 iterations).
    session = Session(**emu.client_config(), max_retries=0)
    "".join(session.chat("warm up"))
    gc.collect()
    fds, threads = _open_fds(), threading.active_count()
    rng = random.Random(20261125)

    def collect_sometimes(frame: Any, event: str, arg: Any) -> None:
        # Often inside the pool's queue (its lock held), rarely anywhere else.
        if event == "call" and (frame.f_code.co_name in _UNDER_QUEUE_LOCK and rng.random() < 0.25 or rng.random() < 0.0005):
            gc.collect()

    def abandon(count: int) -> int:
        sys.setprofile(collect_sometimes)
        try:
            for _ in range(count):
                stream = session.chat("a reply of several chunks")
                next(stream)
                holder: list = [stream]
                holder.append(holder)  # only the cycle collector can free this stream now
                del stream, holder
        finally:
            sys.setprofile(None)
        return count

    assert guarded(lambda: abandon(1000), timeout=90) == 1000
    gc.collect()
    assert "".join(session.chat("still works")) == "Echo: still works"
    session.close()
    gc.collect()
    assert threading.active_count() <= threads
    assert _open_fds() <= fds + 2, "sockets of dropped streams were not closed"
