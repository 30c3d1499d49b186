"""AsyncStream's hand-over between the thread and the loop: no lost wake-up, back-pressure, the two ways to iterate.

Everything here goes through the public :class:`gigachat_lite.AsyncStream` and
the event loop's own ``call_later`` (which the consumer's gathering timer uses):
no test waits a fixed time for a thread to get somewhere.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

from gigachat_lite import AsyncStream


def test_streams_that_pause_and_flow_at_random_never_hang() -> None:
    # Pauses around the 1 ms gathering window make the consumer switch between
    # sleeping on the timer and waiting for a wake-up many times per stream.
    def source(seed: int) -> Iterator[int]:
        rng = random.Random(seed)
        for i in range(400):
            if rng.random() < 0.2:
                time.sleep(rng.choice((0.0, 0.0003, 0.0009, 0.0011, 0.002)))
            yield i

    async def drain(seed: int) -> List[int]:
        return [x async for x in AsyncStream(lambda: source(seed))]

    async def main() -> List[List[int]]:
        return list(await asyncio.gather(*(drain(seed) for seed in range(12))))

    assert asyncio.run(asyncio.wait_for(main(), 60)) == [list(range(400))] * 12


class Counted:
    """An endless source that counts what the stream's thread has taken from it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.produced = 0

    def __iter__(self) -> Iterator[int]:
        for i in range(self.total):
            self.produced = i + 1
            yield i


async def settled(source: Counted) -> int:
    """Wait (on the loop, which must stay free) until the thread stops taking items: it waits for room."""
    last, still = -1, 0
    for _ in range(2000):
        await asyncio.sleep(0.005)
        now = source.produced
        still = still + 1 if now == last else 0
        if still >= 10 or now == source.total:
            return now
        last = now
    return source.produced


@pytest.mark.slow
def test_the_thread_waits_for_a_slow_consumer_and_resumes() -> None:
    # An unbounded buffer would hold all 200,000 items: the thread must stop
    # a bounded distance ahead of the consumer, then go on as it catches up.
    source = Counted(200_000)

    async def main() -> List[int]:
        stream = AsyncStream(lambda: source)
        got = [await stream.__anext__()]
        ahead = await settled(source)
        assert 0 < ahead - len(got) <= 4096, ahead  # stopped well short of the end, with items ready
        async for x in stream:
            got.append(x)
            if x == 100_000:
                assert source.produced - len(got) <= 4096, source.produced  # and again after refilling
        return got

    assert asyncio.run(asyncio.wait_for(main(), 60)) == list(range(200_000))


def test_anext_and_async_for_share_one_stream() -> None:
    async def main() -> List[int]:
        stream = AsyncStream(lambda: iter(range(3000)))
        got = [await stream.__anext__(), await stream.__anext__()]
        async for x in stream:
            got.append(x)
            if x == 1500:
                break
        got += [await stream.__anext__()]
        got += [x async for x in stream]  # a second async for goes on where the first stopped
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
        return got

    assert asyncio.run(main()) == list(range(3000))


def test_nothing_comes_out_after_aclose_inside_the_loop() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    async def main() -> List[int]:
        stream = AsyncStream(endless)
        got: List[int] = []
        async for x in stream:
            got.append(x)
            if len(got) == 3:
                await stream.aclose()
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
        return got

    assert asyncio.run(asyncio.wait_for(main(), 10)) == [0, 1, 2]


def test_the_error_comes_after_every_chunk_in_both_forms() -> None:
    def failing() -> Iterator[int]:
        yield from range(2500)
        raise KeyError("boom")

    async def with_for() -> List[int]:
        got: List[int] = []
        with pytest.raises(KeyError):
            async for x in AsyncStream(failing):
                got.append(x)
        return got

    async def with_anext() -> List[int]:
        got: List[int] = []
        stream = AsyncStream(failing)
        with pytest.raises(KeyError):
            while True:
                got.append(await stream.__anext__())
        with pytest.raises(StopAsyncIteration):  # raised once, then the stream is over
            await stream.__anext__()
        return got

    assert asyncio.run(with_for()) == list(range(2500))
    assert asyncio.run(with_anext()) == list(range(2500))


def record_timers(loop: asyncio.AbstractEventLoop, stretch: Callable[[float], float] = lambda d: d,
                  before: Callable[[], Callable[[], None]] = lambda: lambda: None) -> List[float]:
    """Every ``loop.call_later`` delay asked for from now on; ``stretch`` changes the delay used;
    ``before()`` is called when a timer is set and what it returns runs (on the loop) when it fires."""
    asked: List[float] = []
    call_later = loop.call_later

    def recording(delay: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(delay)
        first = before()

        def fire(*args: Any) -> None:
            first()
            callback(*args)

        return call_later(stretch(delay), fire, *args, **kwargs)

    loop.call_later = recording  # type: ignore[method-assign,assignment]
    return asked


def test_a_firehose_gathers_longer_and_a_pause_brings_the_short_wait_back() -> None:
    # While chunks flow the consumer lets them gather on a loop timer: a short one,
    # a longer one once a look finds many chunks, the short one again when they slow.
    acks = threading.Semaphore(0)
    firehose = Counted(5000)

    def source() -> Iterator[int]:
        yield from firehose  # as fast as it goes
        for i in range(5000, 5100):  # then one at a time, each after the consumer has the last
            acks.acquire(timeout=10)
            yield i

    def plenty() -> Callable[[], None]:
        # A timer set during the firehose: when it fires, let the thread add 100 more
        # first, so the look finds many chunks however busy the machine is (it has
        # room: the consumer emptied the buffer before it set the timer).
        target = min(firehose.total, firehose.produced + 100)

        def wait() -> None:
            deadline = time.monotonic() + 10
            while firehose.produced < target and time.monotonic() < deadline:
                time.sleep(0.0005)

        return wait

    async def main() -> List[float]:
        waits = record_timers(asyncio.get_running_loop(), before=plenty)
        got = []
        async for x in AsyncStream(source):
            got.append(x)
            if x >= 4999:
                acks.release()
        assert got == list(range(5100))
        return waits

    waits = asyncio.run(asyncio.wait_for(main(), 60))
    short, long = waits[0], max(waits)
    assert long > short, waits  # the firehose gathered longer
    after = waits[len(waits) - 1 - waits[::-1].index(long) + 1:]
    assert len(after) > 10 and set(after) == {short}, waits  # one chunk a look: back to the short wait


def test_the_end_of_a_flowing_stream_is_seen_at_once_not_after_the_gathering_wait() -> None:
    # A non-stream reply is one chunk and the end: the consumer, gathering after
    # that chunk, must be woken by the end rather than sleep out its timer; here
    # the timer is an hour, so a consumer that waited for it would never finish.
    def whole() -> Iterator[str]:
        time.sleep(0.02)  # the consumer is waiting for the first chunk, then gathers
        yield "whole reply"

    async def main() -> List[str]:
        record_timers(asyncio.get_running_loop(), stretch=lambda delay: 3600.0)
        return [x async for x in AsyncStream(whole)]

    assert asyncio.run(asyncio.wait_for(main(), 30)) == ["whole reply"]


def test_a_chunk_while_the_consumer_gathers_is_taken_by_its_timer_and_the_end_still_wakes_it() -> None:
    # Chunks arriving while the consumer sleeps on its gathering timer do not wake
    # it (that is the batching); the end does, at once, with a timer of an hour.
    gate = threading.Event()

    def source() -> Iterator[str]:
        yield "a"
        gate.wait(10)  # the consumer has "a" and gathers
        yield "b"
        yield "c"

    async def main() -> List[str]:
        loop = asyncio.get_running_loop()
        record_timers(loop, stretch=lambda delay: 3600.0)
        got = []
        async for x in AsyncStream(source):
            got.append(x)
            if x == "a":
                gate.set()
        return got

    assert asyncio.run(asyncio.wait_for(main(), 30)) == ["a", "b", "c"]
