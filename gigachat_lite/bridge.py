"""A blocking iterator run in its own thread and consumed from asyncio: the plumbing under :mod:`.aio`.

No HTTP or SSE here: only moving values between a worker thread and the loop.

* Each stream gets its own daemon thread rather than a slot in the loop's
  default executor: that executor has ``min(32, cores + 4)`` workers (6 on two
  cores), and one long stream per worker would queue every stream after the
  sixth.
* The thread pushes chunks into a buffer; the loop is woken (one
  ``call_soon_threadsafe``) only when the consumer is actually waiting; the
  consumer takes the whole buffer under one lock and hands the chunks out
  without locking. While chunks are flowing the consumer does not wait on the
  thread at all: it lets them gather for up to 1 ms on a loop timer and takes
  them together, so a fast stream costs a wake-up per batch, not per chunk
  (client CPU per event 2.7x -> 1.2x the http.client floor). A stream that
  pauses is woken at once, and the first chunk is never held back.
* New threads are started by a launcher thread, not on the loop (see
  :class:`_Launcher`).
* ``StopIteration`` never crosses a future (it cannot; ``to_thread(next, gen)``
  would hang): the end is a flag under the same lock as the buffer.
* ``break`` (then garbage collection), :meth:`AsyncStream.aclose` and task
  cancellation stop the thread promptly: the buffer is closed and the blocking
  iterator's ``abort()``, when it has one, shuts its socket so a read blocked
  in the thread returns now.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import os
import queue
import threading
from typing import Any, Callable, Deque, Generic, Iterable, Optional, TypeVar

__all__ = ["AsyncStream", "run"]

T = TypeVar("T")

_HIGH_WATER = 1024  # items buffered before the reading thread waits for the consumer
_BATCH_WAIT = 0.001  # seconds a flowing stream's chunks may gather before the consumer looks again


class _Launcher:
    """Starts stream threads off the event loop.

    ``Thread.start()`` waits until the new thread runs. With hundreds of threads
    competing for the GIL that wait is milliseconds, and 200 streams started in
    one loop iteration froze the loop for ~0.6 s. The loop only queues the
    thread; this launcher starts it, and exits after a short idle spell so no
    thread outlives the work.
    """

    idle_exit = 0.5

    def __init__(self) -> None:
        self._queue: "queue.SimpleQueue[threading.Thread]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    def start(self, thread: threading.Thread) -> None:
        self._queue.put(thread)
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="gigachat_lite-launcher", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                thread = self._queue.get(timeout=self.idle_exit)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # checked under the lock start() takes after put()
                        self._running = False
                        return
                continue
            thread.start()


_LAUNCHER = _Launcher()


def _after_fork() -> None:
    # The launcher thread does not survive a fork; its _running would stay True
    # in the child and no stream would ever start there.
    global _LAUNCHER
    _LAUNCHER = _Launcher()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _wake(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class _Channel(Generic[T]):
    """The state shared by the consumer handle and the worker thread.

    The thread holds only this, never the :class:`AsyncStream` itself, so that
    a consumer that breaks out and drops the stream lets it be collected, and
    its ``__del__`` stops the thread.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.space = threading.Condition(self.lock)
        self.items: Deque[T] = collections.deque()
        self.waiter: Optional["asyncio.Future[None]"] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.iterator: Optional[Iterable[T]] = None
        self.error: Optional[BaseException] = None
        self.finished = False
        self.closed = False

    def produce(self, start: Callable[[], Iterable[T]]) -> None:
        iterator: Optional[Iterable[T]] = None
        try:
            iterator = self.iterator = start()
            for item in iterator:
                with self.lock:
                    while len(self.items) >= _HIGH_WATER and not self.closed:
                        self.space.wait()
                    if self.closed:
                        break
                    self.items.append(item)
                    self.wake_locked()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            with self.lock:
                self.error = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()  # releases the response: the consumer may have left early
                except Exception:
                    pass
            with self.lock:
                self.finished = True
                self.wake_locked()

    def wake_locked(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            assert self.loop is not None
            try:
                self.loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                self.closed = True

    def shutdown(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.space.notify_all()
            self.items.clear()
        abort = getattr(self.iterator, "abort", None)
        if abort is not None and not self.finished:
            abort()


class AsyncStream(Generic[T]):
    """An async iterator over a blocking iterable that runs in its own thread.

    ``start`` is called in that thread and returns the blocking iterable (so a
    blocking request made by ``start`` does not block the loop either).
    Attributes of that iterable (``finish_reason``, ``usage``, ...) are readable
    on this object once it exists. ``on_end`` runs in the consumer's context
    when the stream ends, however it ends.

    Works as ``async for chunk in stream`` and as
    ``async with stream as s: async for chunk in s``.
    """

    def __init__(self, start: Callable[[], Iterable[T]], *, on_end: Optional[Callable[["AsyncStream[T]"], None]] = None) -> None:
        self._start = start
        self._on_end = on_end
        self._channel: _Channel[T] = _Channel()
        self._thread: Optional[threading.Thread] = None
        self._flowing = False  # the last look found chunks: let the next ones gather
        self._ended = False
        # Taken from the channel a whole batch at a time (one lock for everything
        # buffered), then handed out here without locking.
        self._ready: Deque[T] = collections.deque()

    def __aiter__(self) -> "AsyncStream[T]":
        return self

    async def __anext__(self) -> T:
        ready = self._ready
        if ready:
            return ready.popleft()
        channel = self._channel
        if self._thread is None:
            self._begin()
        while True:
            with channel.lock:
                if channel.items:
                    if len(channel.items) >= _HIGH_WATER:
                        channel.space.notify()
                    ready = self._ready = channel.items
                    channel.items = collections.deque()
                    self._flowing = True
                    return ready.popleft()
                if channel.finished or channel.closed:
                    error, channel.error = channel.error, None
                    break
                assert channel.loop is not None
                if self._flowing:
                    waiter = None
                else:
                    waiter = channel.waiter = channel.loop.create_future()
            try:
                if waiter is None:
                    # Chunks were just flowing: let them gather for a moment rather than
                    # have the thread wake the loop once per chunk (a self-pipe write and
                    # two GIL hand-offs each). A chunk waits _BATCH_WAIT at most; a
                    # stream that has paused is woken at once, as below.
                    self._flowing = False
                    await asyncio.sleep(_BATCH_WAIT)
                    continue
                await waiter
                self._flowing = True
            except asyncio.CancelledError:
                self._ready.clear()
                channel.shutdown()
                self._end()
                raise
        self._end()
        if error is not None:
            raise error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop the stream: the thread stops reading and the connection is closed."""
        self._ready.clear()
        self._channel.shutdown()
        self._end()

    async def __aenter__(self) -> "AsyncStream[T]":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        channel = self.__dict__.get("_channel")
        iterator = channel.iterator if channel is not None else None
        if iterator is None:
            if name in ("finish_reason", "usage", "model", "created", "function_call", "functions_state_id", "request_id",
                        "usage_raw", "tools_state_id", "thread_id", "reasoning"):
                return None  # not started yet: nothing known
            raise AttributeError(name)
        return getattr(iterator, name)

    def __del__(self) -> None:
        channel = self.__dict__.get("_channel")
        if channel is not None:
            channel.shutdown()

    def __repr__(self) -> str:
        channel = self._channel
        state = "closed" if channel.closed else "finished" if channel.finished else "open"
        return f"<AsyncStream {state} over {channel.iterator!r}>"

    def _begin(self) -> None:
        self._channel.loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._channel.produce, self._start), name="gigachat_lite-stream", daemon=True
        )
        _LAUNCHER.start(self._thread)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            if self._on_end is not None:
                self._on_end(self)


async def run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a short blocking call (``models()``, ``embeddings()``, ...) off the loop."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(None, functools.partial(context.run, function, *args, **kwargs))
