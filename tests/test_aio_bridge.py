"""bridge.AsyncStream's hand-over between the thread and the loop: no lost wake-up, back-pressure, the two ways to iterate."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from typing import Any, Iterator, List

import pytest

from gigachat_lite import _bridge as bridge
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


def test_the_thread_waits_at_the_high_water_mark_and_resumes() -> None:
    total = bridge._HIGH_WATER * 3 + 7
    seen: List[int] = []

    async def main() -> List[int]:
        stream = AsyncStream(lambda: iter(range(total)))
        got = [await stream.__anext__()]
        await asyncio.sleep(0.2)  # the thread fills the buffer and must stop there
        seen.append(len(stream._channel.items))
        async for x in stream:
            got.append(x)
            seen.append(len(stream._channel.items))
            if x % 500 == 0:
                await asyncio.sleep(0.01)  # let it refill while we are slow
        return got

    assert asyncio.run(asyncio.wait_for(main(), 20)) == list(range(total))
    assert seen[0] == bridge._HIGH_WATER and max(seen) <= bridge._HIGH_WATER


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


def test_a_woken_consumer_runs_before_the_thread_reads_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # The thread stands aside after waking a waiting consumer (the first chunk's
    # latency) until the consumer has run and taken the gate; with a generous
    # bound, the bound is not what ended the wait.
    monkeypatch.setattr(bridge, "_HAND_OVER_WAIT", 5.0)
    streams: List[AsyncStream[str]] = []
    gate_taken: List[bool] = []

    def source() -> Iterator[str]:
        time.sleep(0.05)  # the consumer is waiting by now
        yield "a"
        gate_taken.append(streams[0]._channel.gate is None)
        yield "b"

    async def main() -> List[str]:
        streams.append(AsyncStream(source))
        return [x async for x in streams[0]]

    started = time.monotonic()
    assert asyncio.run(main()) == ["a", "b"]
    assert gate_taken == [True] and time.monotonic() - started < 4.0


def test_a_firehose_gathers_longer_and_a_pause_brings_the_short_wait_back() -> None:
    waits: List[float] = []

    def source() -> Iterator[int]:
        yield from range(5000)  # as fast as it goes: each look finds a full buffer
        time.sleep(0.05)  # a pause: the consumer waits to be woken
        for i in range(5000, 5100):
            time.sleep(0.0005)  # a few chunks per look
            yield i

    async def main() -> List[int]:
        loop = asyncio.get_running_loop()
        call_later = loop.call_later

        def recording(delay: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            if callback is bridge._wake:  # the consumer's gathering timer
                waits.append(delay)
            return call_later(delay, callback, *args, **kwargs)

        loop.call_later = recording  # type: ignore[method-assign,assignment]
        return [x async for x in AsyncStream(source)]

    assert asyncio.run(asyncio.wait_for(main(), 20)) == list(range(5100))
    assert waits[0] == bridge._BATCH_WAIT and bridge._BATCH_WAIT_FAST in waits
    after_pause = waits[len(waits) - 1 - waits[::-1].index(bridge._BATCH_WAIT_FAST) + 1:]
    assert len(after_pause) > 10 and set(after_pause) == {bridge._BATCH_WAIT}, waits


def test_the_end_of_a_flowing_stream_is_seen_at_once_not_after_the_gathering_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    # A non-stream reply is one chunk and the end: the consumer, gathering after
    # that chunk, must be woken by the end rather than sleep out its timer.
    monkeypatch.setattr(bridge, "_BATCH_WAIT", 2.0)

    def two() -> Iterator[str]:
        time.sleep(0.02)  # the consumer waits for the first chunk
        yield "whole reply"

    async def main() -> List[str]:
        return [x async for x in AsyncStream(two)]

    started = time.monotonic()
    assert asyncio.run(main()) == ["whole reply"]
    assert time.monotonic() - started < 1.0
