"""The asyncio adapter: the same blocking generators, run off the event loop.

No HTTP or SSE here: only moving values between a worker thread and the loop.

* Each stream gets its own daemon thread rather than a slot in the loop's
  default executor: that executor has ``min(32, cores + 4)`` workers (6 on two
  cores), and one long stream per worker would queue every stream after the
  sixth.
* The thread pushes chunks into a buffer; the loop is woken (one
  ``call_soon_threadsafe``) only when the consumer is actually waiting, so a
  burst of chunks costs one wake-up, not one each.
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
import threading
from typing import Any, Callable, Deque, Generic, Iterable, Iterator, Optional, TypeVar

from .chat import Messages, prepare_chat, send_chat
from .config import CertArg, Config, Timeout

__all__ = ["AsyncStream", "chat", "run"]

T = TypeVar("T")

_HIGH_WATER = 1024  # items buffered before the reading thread waits for the consumer


def _wake(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class AsyncStream(Generic[T]):
    """An async iterator over a blocking iterator that runs in its own thread.

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
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._items: Deque[T] = collections.deque()
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._iterator: Optional[Iterable[T]] = None
        self._error: Optional[BaseException] = None
        self._finished = False
        self._closed = False
        self._ended = False

    # -- consumer side (the event loop) ------------------------------------------

    def __aiter__(self) -> "AsyncStream[T]":
        return self

    async def __anext__(self) -> T:
        if self._thread is None:
            self._begin()
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    if len(self._items) == _HIGH_WATER - 1:
                        self._space.notify()
                    return item
                if self._finished or self._closed:
                    error, self._error = self._error, None
                    break
                assert self._loop is not None
                waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            except asyncio.CancelledError:
                self._shutdown()
                self._end()
                raise
        self._end()
        if error is not None:
            raise error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop the stream: the thread stops reading and the connection is closed."""
        self._shutdown()
        self._end()

    async def __aenter__(self) -> "AsyncStream[T]":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        iterator = self.__dict__.get("_iterator")
        if iterator is None:
            if name in ("finish_reason", "usage", "model", "created", "function_call", "functions_state_id", "request_id"):
                return None  # not started yet: nothing known
            raise AttributeError(name)
        return getattr(iterator, name)

    def __del__(self) -> None:
        try:
            self._shutdown()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "finished" if self._finished else "open"
        return f"<AsyncStream {state} over {self._iterator!r}>"

    def _begin(self) -> None:
        self._loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._produce,), name="gigachat_lite-stream", daemon=True)
        self._thread.start()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            if self._on_end is not None:
                self._on_end(self)

    def _shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._space.notify_all()
            self._items.clear()
        abort = getattr(self._iterator, "abort", None)
        if abort is not None and not self._finished:
            abort()

    # -- producer side (the worker thread) -----------------------------------------

    def _produce(self) -> None:
        iterator: Optional[Iterable[T]] = None
        try:
            iterator = self._iterator = self._start()
            for item in iterator:
                with self._lock:
                    while len(self._items) >= _HIGH_WATER and not self._closed:
                        self._space.wait()
                    if self._closed:
                        break
                    self._items.append(item)
                    self._wake_locked()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            with self._lock:
                self._error = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()  # releases the response: the consumer may have left early
                except Exception:
                    pass
            with self._lock:
                self._finished = True
                self._wake_locked()

    def _wake_locked(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                self._closed = True


async def run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a short blocking call (``models()``, ``embeddings()``, ...) off the loop."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(None, functools.partial(context.run, function, *args, **kwargs))


def chat(
    messages: Messages,
    *,
    model: Optional[str] = None,
    stream: bool = True,
    update_interval: Optional[float] = None,
    api_key: Optional[str] = None,
    access_token: Optional[str] = None,
    scope: Optional[str] = None,
    base_url: Optional[str] = None,
    auth_url: Optional[str] = None,
    ca_bundle: Optional[str] = None,
    verify: Optional[bool] = None,
    cert: Optional[CertArg] = None,
    proxy: Optional[str] = None,
    timeout: Optional[Timeout] = None,
    max_retries: Optional[int] = None,
    session: Any = None,
    **params: Any,
) -> "AsyncStream[str]":
    """The async twin of :func:`gigachat_lite.chat`: ``async for chunk in aio.chat("Привет")``.

    Input and configuration are validated here, before anything runs; the
    request and the reading happen in the stream's own thread. Pass
    ``session=`` to use a :class:`~gigachat_lite.Session` you configured.
    With ``stream=False`` the whole text is yielded once.
    """
    from .session import shared_session

    if session is None:
        config = Config.resolve(
            api_key=api_key, access_token=access_token, scope=scope, base_url=base_url, auth_url=auth_url,
            ca_bundle=ca_bundle, verify=verify, cert=cert, proxy=proxy, timeout=timeout, max_retries=max_retries,
        )
        default_model = config.model
    else:
        config = None
        default_model = session.config.model
    body = prepare_chat(messages, model=model or default_model, stream=stream, update_interval=update_interval, params=params)

    def start() -> Iterable[str]:
        target = session if session is not None else shared_session(config)  # type: ignore[arg-type]
        return send_chat(target, body)

    return AsyncStream(start)
