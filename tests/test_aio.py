"""The asyncio adapter: same generator, off the loop, many streams at once, prompt cleanup."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Iterator, List

import pytest

from gigachat_lite import aio
from gigachat_lite.aio import AsyncStream
from gigachat_lite.emulator import Emulator


pytestmark = pytest.mark.gigachat_emulator(shared=True, piece_size=2)


def test_async_chat_yields_the_same_chunks_as_sync(emu: Emulator) -> None:
    from gigachat_lite import chat

    sync_chunks = list(chat("Привет, мир", **emu.client_config()))

    async def main() -> List[str]:
        stream = aio.chat("Привет, мир", **emu.client_config())
        chunks = [c async for c in stream]
        assert stream.finish_reason == "stop" and stream.usage["total_tokens"] > 0
        return chunks

    assert asyncio.run(main()) == sync_chunks and len(sync_chunks) > 3


def test_non_stream_yields_the_text_once(emu: Emulator) -> None:
    async def main() -> List[str]:
        return [c async for c in aio.chat("hi", stream=False, **emu.client_config())]

    assert asyncio.run(main()) == ["Echo: hi"]


def test_bad_input_raises_at_call_time_before_any_request(emu: Emulator) -> None:
    before = len(emu.requests)
    with pytest.raises(ValueError, match=r"messages\[0\]\['role'\]"):
        aio.chat([{"role": "robot", "content": "x"}], **emu.client_config())
    assert len(emu.requests) == before


def test_many_streams_progress_together_beyond_the_default_executor(emu: Emulator) -> None:
    emu.delay = 0.05
    events: List[str] = []

    async def one(i: int) -> str:
        chunks = []
        async for chunk in aio.chat(f"s{i}", **emu.client_config()):
            if not chunks:
                events.append("first")
            chunks.append(chunk)
        events.append("end")
        return "".join(chunks)

    async def main() -> List[str]:
        return await asyncio.gather(*(one(i) for i in range(24)))

    try:
        results = asyncio.run(main())
    finally:
        emu.delay = 0.0
    assert results == [f"Echo: s{i}" for i in range(24)]
    # All 24 streams were under way before any finished: with one stream per
    # worker of the default executor (6 here) the 7th could not start until one ended.
    assert events.index("end") >= 24 and events[:24] == ["first"] * 24


def test_loop_keeps_running_while_streams_block(emu: Emulator) -> None:
    emu.delay = 0.4  # each read blocks ~0.4 s in the worker thread

    async def main() -> float:
        ticks: List[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await asyncio.gather(*(_drain(aio.chat(f"y{i}", **emu.client_config())) for i in range(4)))
        task.cancel()
        return max(b - a for a, b in zip(ticks, ticks[1:]))

    try:
        worst_gap = asyncio.run(main())
    finally:
        emu.delay = 0.0
    # A read on the loop would freeze it for a whole 0.4 s event; this is a
    # generous guard for that, not a speed target (the benchmark measures lag).
    assert worst_gap < 0.3


async def _drain(stream: AsyncStream) -> str:
    return "".join([c async for c in stream])


def _stream_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "gigachat_lite-stream")


def _wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_aclose_mid_stream_frees_the_thread_promptly(emu: Emulator) -> None:
    emu.delay = 0.5  # a slow stream: the thread is blocked in a socket read

    async def main() -> None:
        stream = aio.chat("slow reply " * 3, **emu.client_config())
        first = await stream.__anext__()
        assert first
        await stream.aclose()

    try:
        baseline = _stream_threads()
        started = time.monotonic()
        asyncio.run(main())
        assert _wait_for(lambda: _stream_threads() <= baseline, timeout=2.0)
        assert time.monotonic() - started < 2.0  # not the whole stream's ~7 s
    finally:
        emu.delay = 0.0


def test_cancellation_frees_the_thread(emu: Emulator) -> None:
    emu.delay = 0.5

    async def main() -> None:
        async def consume() -> None:
            async for _ in aio.chat("cancel me " * 3, **emu.client_config()):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        baseline = _stream_threads()
        asyncio.run(main())
        assert _wait_for(lambda: _stream_threads() <= baseline, timeout=2.0)
    finally:
        emu.delay = 0.0


def test_break_then_garbage_collection_frees_the_thread(emu: Emulator) -> None:
    emu.delay = 0.5

    async def main() -> None:
        async for _ in aio.chat("break me " * 3, **emu.client_config()):
            break

    try:
        baseline = _stream_threads()
        asyncio.run(main())
        import gc

        gc.collect()
        assert _wait_for(lambda: _stream_threads() <= baseline, timeout=2.0)
    finally:
        emu.delay = 0.0


def test_errors_cross_to_the_consumer_after_the_chunks(emu: Emulator) -> None:
    from gigachat_lite import StreamError
    from gigachat_lite.emulator import Fault

    emu.add_fault(Fault(path="chat/completions", cut_after=2, times=1))

    async def main() -> List[str]:
        got: List[str] = []
        with pytest.raises(StreamError):
            async for chunk in aio.chat("abcdefghij", **emu.client_config()):
                got.append(chunk)
        return got

    try:
        got = asyncio.run(main())
    finally:
        emu.clear_faults()
    assert "".join(got) == "Echo: abcdefghij"[: 2 * 2]


def test_async_with_form_and_generic_iterables() -> None:
    async def main() -> List[int]:
        async with AsyncStream(lambda: iter(range(5000))) as stream:
            return [x async for x in stream]

    assert asyncio.run(main()) == list(range(5000))


def test_stop_iteration_from_an_empty_source_does_not_hang() -> None:
    async def main() -> List[int]:
        return [x async for x in AsyncStream(lambda: iter(()))]

    assert asyncio.run(asyncio.wait_for(main(), 5)) == []


def test_run_helper_runs_off_the_loop() -> None:
    async def main() -> bool:
        loop_thread = threading.get_ident()
        return await aio.run(lambda: threading.get_ident() != loop_thread)

    assert asyncio.run(main())


def test_a_flowing_stream_wakes_the_loop_in_batches_not_per_chunk() -> None:
    wakes: List[int] = []

    def trickle() -> Iterator[int]:
        for i in range(2000):
            time.sleep(0.0001)  # a chunk every ~0.1-0.2 ms, like a fast stream over loopback
            yield i

    async def main() -> List[int]:
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:  # every wake-up from the stream's thread
            wakes.append(1)
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        return [x async for x in AsyncStream(trickle)]

    assert asyncio.run(main()) == list(range(2000))
    # One wake per chunk would be ~2000; gathered for up to 1 ms, a few hundred at most.
    assert len(wakes) < 700, len(wakes)
