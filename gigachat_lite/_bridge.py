"""A blocking iterator run in its own thread and consumed from asyncio: the plumbing under :mod:`.aio`.

No HTTP or SSE here: only moving values between a worker thread and the loop.

* Each stream gets its own daemon thread, not a slot in the loop's default
  executor (``min(32, cores + 4)`` workers: a seventh stream would queue on two cores).
* The thread appends chunks to a deque the consumer pops, under the channel's
  lock. The loop is woken (``call_soon_threadsafe``) only when the consumer
  waits, and the thread then stands aside until it has the chunk. While chunks flow
  the consumer lets them gather on a loop timer (1 ms; 4 ms once a look finds
  64+) and takes them together: a wake-up per batch, not per chunk. A paused
  stream, its end and the first chunk are never held back. ``async for`` runs
  an async generator (no coroutine object per chunk).
* Threads start off the loop (``Thread.start()`` waits until the new thread
  runs: with hundreds of threads competing for the GIL, 200 streams started in
  one loop iteration froze the loop for ~0.6 s), and a finished thread waits
  a moment for the next stream (a thread start took ~0.16 ms of an async
  stream's first chunk).
* The end is a flag, never ``StopIteration`` across a future (it would hang).
* ``break`` (then garbage collection), :meth:`AsyncStream.aclose` and task
  cancellation stop the thread promptly: the buffer is closed and the iterator's
  ``abort()``, if any, shuts its socket so a read blocked in the thread returns.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import os
import queue
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Deque, Dict, Generic, Iterable, List, Optional, TypeVar

if TYPE_CHECKING:
    from ._chat.reply import ToolCall, Usage

__all__ = ["AsyncStream"]

T = TypeVar("T")

_HIGH_WATER = 1024  # items buffered before the reading thread waits for the consumer
_BATCH_WAIT = 0.001  # seconds a flowing stream's chunks may gather before the consumer looks again
_BATCH_WAIT_FAST, _FAST_BATCH = 0.004, 64  # the same once a look has found 64 chunks or more
_HAND_OVER_WAIT = 0.001  # seconds at most the thread stands aside for a consumer it has just woken


def _wake(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


# -- the threads: started off the event loop, reused back to back --------------------------------

class _Launcher:
    """Starts stream threads off the event loop (the loop only queues them), and exits after a short idle spell."""

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


class _Workers:
    """Stream threads: one per stream in flight; a finished one waits ``idle_exit`` s for the next.

    A thread start took ~0.16 ms of an async stream's first chunk. ``_idle`` has a
    token per idle thread: a stream that takes one has a thread waiting, else a new
    one starts. A thread that times out leaves only if it takes a token back.
    """

    idle_exit = 0.5

    def __init__(self) -> None:
        self._jobs: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)
        if not self._idle.acquire(blocking=False):
            _LAUNCHER.start(threading.Thread(target=self._work, name="gigachat_lite-stream", daemon=True))

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.idle_exit)
            except queue.Empty:
                if self._idle.acquire(blocking=False):
                    return
                continue
            try:
                job()
            finally:  # produce() hands every error to its consumer; del: no channel kept alive while idle
                del job
            self._idle.release()


_WORKERS = _Workers()


def _after_fork() -> None:
    # Threads do not survive a fork: the launcher's "running" flag and the idle
    # tokens would promise threads the child does not have, and no stream would
    # ever start there. Reset in place: other modules hold these objects.
    _LAUNCHER.__init__()  # type: ignore[misc]
    _WORKERS.__init__()  # type: ignore[misc]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# -- the channel between a thread and the loop -------------------------------------------------

class _Channel(Generic[T]):
    """The state shared by the consumer handle and the worker thread.

    The thread holds only this, never the :class:`AsyncStream`: a stream the
    consumer drops is collected, and its ``__del__`` stops the thread. ``items``
    is appended and popped lock-free (atomic deque operations); the lock guards
    the rest (the waiter, the end, ``full``).
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
        self.full = False  # the thread waits (or is about to) for the consumer to make room
        self.gate: Optional[threading.Lock] = None  # hand_over() waits on it until the woken consumer runs
        self.sleeper: Optional["asyncio.Future[None]"] = None  # the consumer's timer while chunks gather
        self.cancel: Optional[Callable[[], None]] = None  # stops start() while it runs

    def produce(self, start: Callable[[], Iterable[T]]) -> None:
        iterator: Optional[Iterable[T]] = None
        items = self.items
        append = items.append
        # The bound methods rather than ``with self.lock``: a third less of this loop's own cost per chunk.
        acquire, release = self.lock.acquire, self.lock.release
        try:
            iterator = self.iterator = start()
            for item in iterator:
                if len(items) >= _HIGH_WATER:
                    self.wait_for_space()
                acquire()  # the consumer sets its waiter under the lock: no wake-up is lost
                try:
                    if self.closed:
                        break
                    append(item)
                    waiting = self.waiter is not None
                finally:
                    release()
                if waiting:
                    self.hand_over()
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
                self.waiter, self.sleeper = self.sleeper, None  # a consumer letting chunks gather: the end is news
                self.wake_locked()

    def wait_for_space(self) -> None:
        with self.lock:  # the consumer looks at ``full`` under this lock whenever it has emptied the deque
            self.full = True
            while len(self.items) >= _HIGH_WATER and not self.closed:
                self.space.wait()
            self.full = False

    def hand_over(self) -> None:
        """Wake the waiting consumer, then stand aside (bounded) until it has the chunk.

        Reading on, this thread would keep the GIL from the woken loop (~0.1 ms on a first chunk).
        """
        gate = threading.Lock()
        gate.acquire()
        with self.lock:
            self.gate = gate  # released by the consumer once it runs
            woke = self.wake_locked()
        if woke:
            gate.acquire(timeout=_HAND_OVER_WAIT)

    def wake_locked(self) -> bool:
        waiter = self.waiter
        if waiter is None:
            return False
        self.waiter = None
        assert self.loop is not None
        try:
            self.loop.call_soon_threadsafe(_wake, waiter)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            self.closed = True
            return False
        return True

    def shutdown(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.space.notify_all()
            self.items.clear()
        if self.finished:
            return
        abort = getattr(self.iterator, "abort", None)
        if abort is not None:
            abort()
        elif self.cancel is not None:  # still in start(): the request has not got its reply yet
            self.cancel()


class AsyncStream(Generic[T]):
    """An async iterator over a blocking iterable that runs in its own thread.

    ``start`` is called in that thread and returns the blocking iterable (so a
    blocking request made by ``start`` does not block the loop either);
    ``cancel``, if given, stops a ``start`` still running when the stream is
    closed or its task cancelled (the iterable's ``abort()`` stops it after).
    Attributes of that iterable (``finish_reason``, ``usage``, ...) are readable
    on this object once it exists. ``on_end`` runs in the consumer's context
    when the stream ends, however it ends.

    Works as ``async for chunk in stream`` and as
    ``async with stream as s: async for chunk in s``; ``await stream.__anext__()``
    works too, and mixes with ``async for``.
    """

    def __init__(
        self,
        start: Callable[[], Iterable[T]],
        *,
        on_end: Optional[Callable[["AsyncStream[T]"], None]] = None,
        cancel: Optional[Callable[[], None]] = None,
    ) -> None:
        self._start = start
        self._on_end = on_end
        self._channel: _Channel[T] = _Channel()
        self._channel.cancel = cancel
        self._started = False
        self._flowing = False  # the last look found chunks: let the next ones gather
        self._ended = False
        self._gather = _BATCH_WAIT  # how long the next look waits while chunks flow

    def __aiter__(self) -> AsyncIterator[T]:
        # An async generator (C-level __anext__; ``async def __anext__`` makes a coroutine
        # per chunk). It holds the stream: dropping it (``break``) does not end the stream.
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        channel = self._channel
        items = channel.items
        pop = items.popleft
        while True:
            while items and not channel.closed:
                yield pop()
            if not await self._wait():
                return

    async def __anext__(self) -> T:
        channel = self._channel
        items = channel.items
        while not (items and not channel.closed):
            if not await self._wait():
                raise StopAsyncIteration
        return items.popleft()

    async def _wait(self) -> bool:
        """Wait until chunks are there (True) or the stream has ended (False; its error is raised)."""
        channel = self._channel
        items = channel.items
        if not self._started:
            self._begin()
        loop = channel.loop
        assert loop is not None
        while True:
            with channel.lock:
                if channel.full:  # the thread waits for room, and the deque is empty now
                    channel.space.notify()
                if channel.closed or (channel.finished and not items):
                    error, channel.error = channel.error, None
                    break
                waiter = None
                if not items:
                    if self._flowing:  # woken by its timer, or by the end
                        waiter = channel.sleeper = loop.create_future()
                    else:  # under the lock produce() appends under: an append now sees it
                        waiter = channel.waiter = loop.create_future()
            if items:
                self._flowing = True
                return True
            assert waiter is not None
            try:
                if self._flowing:
                    # Chunks were flowing: let them gather (a loop wake-up and a GIL hand-off per look,
                    # not per chunk; the end wakes us at once). A firehose gathers longer (TLS CPU per
                    # event over sync 0.98 -> 0.34 us); a pause brings the short wait back.
                    self._flowing = False
                    timer = loop.call_later(self._gather, _wake, waiter)
                    try:
                        await waiter
                    finally:
                        timer.cancel()
                        channel.sleeper = None
                    self._gather = _BATCH_WAIT_FAST if len(items) >= _FAST_BATCH else _BATCH_WAIT
                else:
                    await waiter
                    gate, channel.gate = channel.gate, None  # set before the wake-up that got us here
                    if gate is not None:
                        gate.release()
            except asyncio.CancelledError:
                channel.shutdown()
                self._end()
                raise
        self._end()
        if error is not None:
            raise error
        return False

    async def aclose(self) -> None:
        """Stop the stream: the thread stops reading and the connection is closed."""
        self._channel.shutdown()
        self._end()

    async def __aenter__(self) -> "AsyncStream[T]":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    # What the blocking iterable (a ChatStream, a whole reply) has learnt so far: nothing before it started.
    @property
    def finish_reason(self) -> Optional[str]:
        """Why the reply ended, once known."""
        value: Optional[str] = getattr(self._channel.iterator, "finish_reason", None)
        return value

    @property
    def usage(self) -> Optional["Usage"]:
        """Token usage (``usage.total_tokens``, ...), once the last event has arrived."""
        value: Optional[Usage] = getattr(self._channel.iterator, "usage", None)
        return value

    @property
    def usage_raw(self) -> Optional[Dict[str, Any]]:
        """Usage as the server sent it."""
        value: Optional[Dict[str, Any]] = getattr(self._channel.iterator, "usage_raw", None)
        return value

    @property
    def model(self) -> Optional[str]:
        """The model that answered."""
        value: Optional[str] = getattr(self._channel.iterator, "model", None)
        return value

    @property
    def created(self) -> Optional[int]:
        """When the reply was made (seconds since the epoch)."""
        value: Optional[int] = getattr(self._channel.iterator, "created", None)
        return value

    @property
    def function_call(self) -> Optional[Dict[str, Any]]:
        """The first function the model called, once the stream has ended."""
        value: Optional[Dict[str, Any]] = getattr(self._channel.iterator, "function_call", None)
        return value

    @property
    def tool_calls(self) -> List["ToolCall"]:
        """Every function the model called, once the stream has ended."""
        value: List["ToolCall"] = getattr(self._channel.iterator, "tool_calls", [])
        return value

    @property
    def functions_state_id(self) -> Optional[str]:
        """The state id to send back with a function result."""
        value: Optional[str] = getattr(self._channel.iterator, "functions_state_id", None)
        return value

    @property
    def tools_state_id(self) -> Optional[str]:
        """v2: the state id to send back with a function result."""
        value: Optional[str] = getattr(self._channel.iterator, "tools_state_id", None)
        return value

    @property
    def request_id(self) -> Optional[str]:
        """The reply's ``X-Request-Id``."""
        value: Optional[str] = getattr(self._channel.iterator, "request_id", None)
        return value

    @property
    def reasoning(self) -> str:
        """The model's reasoning received so far, apart from the answer."""
        value: str = getattr(self._channel.iterator, "reasoning", "")
        return value

    @property
    def text(self) -> str:
        """The answer received so far."""
        value: str = getattr(self._channel.iterator, "text", "")
        return value

    @property
    def thread_id(self) -> Optional[str]:
        """The thread the reply was stored in, if any."""
        value: Optional[str] = getattr(self._channel.iterator, "thread_id", None)
        return value

    @property
    def message_id(self) -> Optional[str]:
        """The stored message's id, if any."""
        value: Optional[str] = getattr(self._channel.iterator, "message_id", None)
        return value

    @property
    def files(self) -> List[Dict[str, Any]]:
        """v2: files the model made."""
        value: List[Dict[str, Any]] = getattr(self._channel.iterator, "files", [])
        return value

    @property
    def sources(self) -> Dict[str, Any]:
        """v2: web search sources by number."""
        value: Dict[str, Any] = getattr(self._channel.iterator, "sources", {})
        return value

    def assistant_message(self) -> Dict[str, Any]:
        """The reply as the assistant turn of the history (once the stream has ended): the iterable's own."""
        return self._ended_result().assistant_message()  # type: ignore[no-any-return]

    def function_result(self, result: Any) -> List[Dict[str, Any]]:
        """The messages answering the reply's function call (once the stream has ended): the iterable's own."""
        return self._ended_result().function_result(result)  # type: ignore[no-any-return]

    def tool_results(self, results: Any) -> List[Dict[str, Any]]:
        """The messages answering every function the reply called (once the stream has ended): the iterable's own."""
        return self._ended_result().tool_results(results)  # type: ignore[no-any-return]

    def _ended_result(self) -> Any:
        channel = self._channel
        if not channel.finished or channel.iterator is None:
            raise ValueError("the stream has not ended: read it to the end (async for) first")
        return channel.iterator

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
        self._started = True
        context = contextvars.copy_context()
        _WORKERS.submit(functools.partial(context.run, self._channel.produce, self._start))

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            if self._on_end is not None:
                self._on_end(self)
