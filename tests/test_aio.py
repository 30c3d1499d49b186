"""The asyncio adapter: same generator, off the loop, many streams at once, prompt cleanup."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Iterator, List

import pytest

from gigachat_lite import aio
from gigachat_lite.aio import AsyncStream
from gigachat_lite.emulator import Emulator, Fault


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


def chat_requests(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))


async def held_until_all_arrive(emu: Emulator, count: int, consume: Any) -> List[Any]:
    """Run ``count`` streams whose replies wait until all ``count`` requests have reached the server.

    The loop opens the gate itself: it must be free while every stream waits
    (a read or a send on the loop would keep it from ever getting there), and
    each stream must have a thread of its own (with a thread per executor
    worker, the 7th request on 2 cores would wait for one to end: never).
    """
    gate = threading.Event()
    emu.set_reply(lambda body: "Echo: " + body["messages"][-1]["content"] if gate.wait(60) else "gate never opened")
    try:
        before = chat_requests(emu)
        tasks = [asyncio.create_task(consume(i)) for i in range(count)]
        deadline = time.monotonic() + 60  # a guard only: the failure is the condition never holding
        while chat_requests(emu) - before < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        arrived = chat_requests(emu) - before
        gate.set()
        results = list(await asyncio.gather(*tasks))
        assert arrived == count, f"only {arrived} of {count} streams reached the server before any reply"
        return results
    finally:
        gate.set()
        emu.set_reply(None)


def test_many_streams_progress_together_beyond_the_default_executor(emu: Emulator) -> None:
    async def one(i: int) -> str:
        return "".join([chunk async for chunk in aio.chat(f"s{i}", **emu.client_config())])

    results = asyncio.run(held_until_all_arrive(emu, 24, one))
    assert results == [f"Echo: s{i}" for i in range(24)]


def test_loop_keeps_running_while_streams_block(emu: Emulator) -> None:
    # Each stream's thread blocks in a read until the loop opens the gate.
    async def one(i: int) -> str:
        return await _drain(aio.chat(f"y{i}", **emu.client_config()))

    assert asyncio.run(held_until_all_arrive(emu, 4, one)) == [f"Echo: y{i}" for i in range(4)]


async def _drain(stream: AsyncStream) -> str:
    return "".join([c async for c in stream])


def _stream_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "gigachat_lite-stream")


def _wait_for(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# The streams below stall for a minute after their first event (the thread blocked in
# a socket read): a thread that is not freed at once outlives the 30 s waits. Each test
# starts with no stream thread left (idle ones leave after half a second), so one
# still there at the end is the stream's.
STALL = Fault(path="chat/completions", stall=60, after=1)


def no_stream_threads() -> bool:
    return _wait_for(lambda: _stream_threads() == 0, timeout=30)


@pytest.mark.slow
def test_aclose_mid_stream_frees_the_thread_promptly(emu: Emulator) -> None:
    emu.add_fault(STALL)

    async def main() -> None:
        stream = aio.chat("slow reply " * 3, **emu.client_config())
        first = await stream.__anext__()
        assert first
        await stream.aclose()

    try:
        assert no_stream_threads()
        asyncio.run(main())
        assert no_stream_threads()
    finally:
        emu.clear_faults()


@pytest.mark.slow
def test_cancellation_frees_the_thread(emu: Emulator) -> None:
    emu.add_fault(STALL)

    async def main() -> None:
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in aio.chat("cancel me " * 3, **emu.client_config()):
                started.set()

        task = asyncio.create_task(consume())
        await started.wait()  # a chunk has come: the thread is now stuck in the stall
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        assert no_stream_threads()
        asyncio.run(asyncio.wait_for(main(), 30))
        assert no_stream_threads()
    finally:
        emu.clear_faults()


@pytest.mark.slow
def test_break_then_garbage_collection_frees_the_thread(emu: Emulator) -> None:
    emu.add_fault(STALL)

    async def main() -> None:
        async for _ in aio.chat("break me " * 3, **emu.client_config()):
            break

    try:
        assert no_stream_threads()
        asyncio.run(main())
        import gc

        gc.collect()
        assert no_stream_threads()
    finally:
        emu.clear_faults()


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


@pytest.mark.slow
def test_a_flowing_stream_wakes_the_loop_in_batches_not_per_chunk() -> None:
    wakes: List[int] = []
    produced = [0]

    def trickle() -> Iterator[int]:
        for i in range(2000):
            time.sleep(0.0001)  # a chunk every ~0.1-0.2 ms, like a fast stream over loopback
            produced[0] = i + 1
            yield i

    async def main() -> List[int]:
        loop = asyncio.get_running_loop()
        original_wake, original_timer = loop.call_soon_threadsafe, loop.call_later

        def counting(*args: Any, **kwargs: Any) -> Any:  # every wake-up from the stream's thread
            wakes.append(1)
            return original_wake(*args, **kwargs)

        def timer(delay: float, callback: Any, *args: Any) -> Any:
            # The consumer's gathering timer: when it fires, the chunks of its window
            # have come, however slowly a busy machine runs the thread (a few, here).
            target = min(2000, produced[0] + 3)

            def fire(*args: Any) -> None:
                end = time.monotonic() + 10
                while produced[0] < target and time.monotonic() < end:
                    time.sleep(0.0002)
                callback(*args)

            return original_timer(delay, fire, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        loop.call_later = timer  # type: ignore[method-assign,assignment]
        return [x async for x in AsyncStream(trickle)]

    assert asyncio.run(main()) == list(range(2000))
    # One wake per chunk would be ~2000: a flowing stream is looked at on the timer, not woken.
    assert len(wakes) < 50, len(wakes)
