"""bridge's stream threads: one per stream in flight, reused back to back, gone after idling."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Iterator, List, Set

import pytest

from gigachat_lite import _bridge as bridge
from gigachat_lite import _bridge as stream_threads
from gigachat_lite import AsyncStream


def _idents(count: int) -> Iterator[int]:
    for _ in range(count):
        yield threading.get_ident()


async def _drain(stream: AsyncStream[int]) -> List[int]:
    return [x async for x in stream]


def _workers() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "gigachat_lite-stream")


def test_back_to_back_streams_reuse_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Own workers: idle threads left by earlier tests (test_aio's 24 streams) would
    # each take a stream, and the set would hold several.
    monkeypatch.setattr(bridge, "_WORKERS", stream_threads._Workers())

    async def main() -> Set[int]:
        seen: Set[int] = set()
        for _ in range(5):
            seen.update([x async for x in AsyncStream(lambda: _idents(3))])
        return seen

    seen = asyncio.run(main())
    assert len(seen) == 1 and threading.get_ident() not in seen


def test_streams_in_flight_each_have_their_own_thread() -> None:
    gate = threading.Barrier(4, timeout=5)  # passes only if all four run at once

    def held() -> Iterator[int]:
        gate.wait()
        yield threading.get_ident()

    async def main() -> List[List[int]]:
        streams = [AsyncStream(held) for _ in range(4)]
        return list(await asyncio.gather(*(_drain(s) for s in streams)))

    got = asyncio.run(asyncio.wait_for(main(), 10))
    assert len({ident for (ident,) in got}) == 4


def test_idle_threads_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_threads._Workers, "idle_exit", 0.05)
    workers = stream_threads._Workers()
    monkeypatch.setattr(bridge, "_WORKERS", workers)
    before = _workers()

    async def main() -> int:
        gate = threading.Barrier(3, timeout=5)  # three streams in flight: three threads

        def held() -> Iterator[int]:
            gate.wait()
            yield threading.get_ident()

        got = await asyncio.gather(*(_drain(AsyncStream(held)) for _ in range(3)))
        return len({ident for idents in got for ident in idents})

    assert asyncio.run(main()) == 3
    deadline = time.monotonic() + 3
    while _workers() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _workers() <= before
    assert asyncio.run(main()) == 3  # new threads once the idle ones have gone
