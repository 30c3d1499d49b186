"""AsyncStream's threads: one per stream in flight, reused back to back, gone after idling.

The threads are seen through ``threading`` (they are named ``gigachat_lite-stream``);
a test that needs none left over from earlier tests waits for them to idle out
(half a second) rather than replacing the library's pool.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Iterator, List, Set

import pytest

from gigachat_lite import AsyncStream

from reliability_support import wait_for


def _idents(count: int) -> Iterator[int]:
    for _ in range(count):
        yield threading.get_ident()


async def _drain(stream: AsyncStream[int]) -> List[int]:
    return [x async for x in stream]


def _workers() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "gigachat_lite-stream")


def no_idle_threads() -> None:
    """Wait until the stream threads earlier tests left have idled out (an idle one would take a stream)."""
    assert wait_for(lambda: _workers() == 0, timeout=30), "stream threads never exit after idling"


@pytest.mark.slow
def test_back_to_back_streams_reuse_one_thread() -> None:
    no_idle_threads()

    async def main() -> Set[int]:
        seen: Set[int] = set()
        for _ in range(5):
            seen.update([x async for x in AsyncStream(lambda: _idents(3))])
        return seen

    seen = asyncio.run(main())
    assert len(seen) == 1 and threading.get_ident() not in seen


def test_streams_in_flight_each_have_their_own_thread() -> None:
    gate = threading.Barrier(4, timeout=10)  # passes only if all four run at once

    def held() -> Iterator[int]:
        gate.wait()
        yield threading.get_ident()

    async def main() -> List[List[int]]:
        streams = [AsyncStream(held) for _ in range(4)]
        return list(await asyncio.gather(*(_drain(s) for s in streams)))

    got = asyncio.run(asyncio.wait_for(main(), 20))
    assert len({ident for (ident,) in got}) == 4


@pytest.mark.slow
def test_idle_threads_exit_and_new_ones_start_after() -> None:
    no_idle_threads()

    async def main() -> Set[int]:
        gate = threading.Barrier(3, timeout=10)  # three streams in flight: three threads

        def held() -> Iterator[int]:
            gate.wait()
            yield threading.get_ident()

        got = await asyncio.gather(*(_drain(AsyncStream(held)) for _ in range(3)))
        return {ident for idents in got for ident in idents}

    assert len(asyncio.run(main())) == 3
    no_idle_threads()  # all three leave once idle
    assert len(asyncio.run(main())) == 3  # and new threads start once the idle ones have gone
