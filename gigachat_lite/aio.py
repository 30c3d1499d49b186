"""The asyncio adapter: the same blocking calls, run off the event loop.

``aio.chat(...)`` checks its input on the loop, then sends and reads in the
stream's own thread (:class:`~gigachat_lite.AsyncStream`); the other
calls (``await aio.models()``, ...) are the functions of :mod:`gigachat_lite.api`,
each run whole in the loop's default executor with the same arguments.
``aio.assistants`` and ``aio.threads`` (or :class:`AsyncAssistants` /
:class:`AsyncThreads` over a session) are the sync namespaces' methods made
awaitable the same way; their streams are built (and checked) on the loop and
sent in the stream's thread, as ``aio.chat``. No protocol logic lives here.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Dict, Iterator, List, Optional, Type, TypeVar, overload

import gigachat_lite.api as api  # the module, not the package: aio wraps each of its calls
from ._assistants import Assistants
from ._batch import BatchProgress, BatchSummary, PathArg, ProgressCallback
from ._batch import StopSignal, run_stoppable_batch
from ._bridge import AsyncStream
from ._chat.request import Messages
from ._http.deadline import cancellable
from .results import Event
from ._threads import Threads, ThreadMessagesArg, rerun_body, run_body, run_messages_body
from .structured import parse_reply

if TYPE_CHECKING:
    from typing_extensions import Concatenate, ParamSpec, Unpack

    from ._chat.request import ChatOptions, ParseOptions
    from .config import Options
    from ._threads import RunOptions
    from .session import Session

    P = ParamSpec("P")

__all__ = [
    "AsyncStream", "chat", "chat_events", "parse", "ai_check", "functions_convert", "run", "models", "model", "embeddings", "tokens_count", "balance",
    "upload_file", "files", "file", "delete_file", "file_content", "run_batch", "assistants", "threads", "AsyncAssistants",
    "AsyncThreads",
]

R = TypeVar("R")


class _EventView:
    """A stream seen through ``iter_events()``, run in the stream's thread; every other attribute is the stream's."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._events: Iterator[Event] = stream.iter_events()

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["stream"], name)


async def run(function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run a short blocking call (``models()``, ``embeddings()``, ...) off the loop, in its context.

    Cancelling the awaiting task stops the call at once (its connection is
    shut and its concurrency slot given back), not when the server answers.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    job, cancel = cancellable(functools.partial(function, *args, **kwargs))
    try:
        return await loop.run_in_executor(None, functools.partial(context.run, job))
    except asyncio.CancelledError:
        cancel()
        raise


def chat(
    messages: Messages,
    *,
    stream: bool = True,
    update_interval: Optional[float] = None,
    session: Optional["Session"] = None,
    **options: "Unpack[ChatOptions]",
) -> "AsyncStream[str]":
    """The async twin of :func:`gigachat_lite.chat`: ``async for chunk in aio.chat("Привет")``.

    Input and configuration are checked here, before anything runs; the
    request and the reading happen in the stream's own thread. With
    ``stream=False`` the whole text is yielded once.
    """
    call = api.prepare_call(messages, stream=stream, update_interval=update_interval, session=session, **options)
    start, cancel = cancellable(call.send)
    return AsyncStream(start, cancel=cancel)


def chat_events(messages: Messages, **options: "Unpack[ChatOptions]") -> "AsyncStream[Event]":
    """:func:`chat` yielding ``("reasoning", piece)`` and ``("text", piece)`` as they arrive.

    The async twin of ``stream.iter_events()``: reasoning apart from the
    answer, in order. Takes :func:`chat`'s arguments; ``finish_reason``,
    ``usage``, ``text`` and ``reasoning`` are readable on the result as on
    :func:`chat`'s.
    """
    call = api.prepare_call(messages, **options)  # checked here, before anything runs
    start, cancel = cancellable(lambda: _EventView(call.send()))
    return AsyncStream(start, cancel=cancel)


@overload
async def parse(messages: Messages, response_format: Type[R], **options: "Unpack[ParseOptions]") -> R: ...  # noqa: E704


@overload
async def parse(messages: Messages, response_format: Any, **options: "Unpack[ParseOptions]") -> Any: ...  # noqa: E704


async def parse(messages: Messages, response_format: Any, **options: "Unpack[ParseOptions]") -> Any:
    """``await aio.parse(prompt, Model)``: :func:`gigachat_lite.parse`, the request made off the loop.

    Input is checked here, before anything runs.
    """
    call = api.prepare_call(messages, stream=False, **{**options, "response_format": response_format})
    return await run(lambda: parse_reply(call.send(), response_format))


def _off_loop(function: "Callable[P, R]") -> "Callable[P, Coroutine[Any, Any, R]]":
    """``function`` as a coroutine function that runs it in the loop's default executor."""

    @functools.wraps(function)
    async def call(*args: "P.args", **kwargs: "P.kwargs") -> R:
        return await run(function, *args, **kwargs)

    call.__doc__ = f"``await aio.{function.__name__}(...)``: :func:`gigachat_lite.{function.__name__}` off the loop."
    return call


# Short request/reply calls: each runs whole in the executor, arguments as its sync twin's.
models = _off_loop(api.models)
model = _off_loop(api.model)
embeddings = _off_loop(api.embeddings)
tokens_count = _off_loop(api.tokens_count)
balance = _off_loop(api.balance)
upload_file = _off_loop(api.upload_file)
files = _off_loop(api.files)
file = _off_loop(api.file)
delete_file = _off_loop(api.delete_file)
file_content = _off_loop(api.file_content)
ai_check = _off_loop(api.ai_check)
functions_convert = _off_loop(api.functions_convert)


async def run_batch(
    input: PathArg,
    output: PathArg,
    *,
    method: str = "chat",
    remote: bool = False,
    on_progress: Optional[ProgressCallback] = None,
    poll_interval: float = 30.0,
    session: Optional["Session"] = None,
    **options: "Unpack[Options]",
) -> BatchSummary:
    """``await aio.run_batch("in.jsonl", "out.jsonl")``: :func:`gigachat_lite.run_batch` off the loop.

    The same arguments and files; the run happens in an executor thread (its
    requests in threads of their own), and ``on_progress`` is called on the
    event loop. Cancelling the task stops the run at once: no request starts
    after it, the replies to those already sent are still written to
    ``output`` (remote: the polling stops, the submitted jobs are kept), and
    the same call resumes.
    """
    loop = asyncio.get_running_loop()
    stop = StopSignal()
    raised: List[BaseException] = []  # what on_progress raised, on the loop: it stops the run, as it does a sync one

    def on_loop(progress: BatchProgress) -> None:
        if on_progress is None or stop.is_set():
            return
        try:
            on_progress(progress)
        except BaseException as exc:  # asyncio would only log it: handed to the awaiting task instead
            raised.append(exc)
            stop.set()

    def report(progress: BatchProgress) -> None:
        if on_progress is not None and not stop.is_set():
            loop.call_soon_threadsafe(on_loop, progress)

    # Not aio.run: its cancel would shut the sockets of requests already paid for, losing their replies.
    context = contextvars.copy_context()
    job = functools.partial(
        context.run, run_stoppable_batch, stop, input, output, method=method, remote=remote, on_progress=report,
        poll_interval=poll_interval, session=session, **options,
    )
    try:
        summary: BatchSummary = await loop.run_in_executor(None, job)
    except asyncio.CancelledError:
        stop.set()
        raise
    except BaseException:
        if raised:
            raise raised[0] from None  # the run stopped because of it
        raise
    if raised:  # from the last report, as the run ended
        raise raised[0]
    return summary


# -- assistants and threads: the sync namespaces' methods, awaitable ------------------------------


def _awaitable(method: "Callable[Concatenate[Any, P], R]") -> "Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]":
    """A sync namespace's method as a coroutine method: run whole in the executor on the async namespace's ``_sync``."""

    async def call(self: Any, /, *args: "P.args", **kwargs: "P.kwargs") -> R:
        return await run(method, self._sync, *args, **kwargs)

    functools.update_wrapper(call, method)  # its name and signature, for help()
    call.__doc__ = f"``await``: :meth:`gigachat_lite.{method.__qualname__}` off the loop."
    return call


class AsyncAssistants:
    """The assistants API for asyncio: :class:`~gigachat_lite.Assistants`' methods, awaitable.

    ``AsyncAssistants(session)`` works on ``session``; ``aio.assistants`` on
    the shared session of the environment's configuration.
    """

    __slots__ = ("_sync",)

    def __init__(self, session: Optional["Session"] = None) -> None:
        self._sync: Assistants = api.assistants if session is None else session.assistants

    list = _awaitable(Assistants.list)
    get = _awaitable(Assistants.get)
    create = _awaitable(Assistants.create)
    update = _awaitable(Assistants.update)
    delete = _awaitable(Assistants.delete)
    delete_file = _awaitable(Assistants.delete_file)


class AsyncThreads:
    """The threads API for asyncio: :class:`~gigachat_lite.Threads`' methods, awaitable; its streams are :class:`AsyncStream`.

    ``AsyncThreads(session)`` works on ``session``; ``aio.threads`` on the
    shared session of the environment's configuration. A stream's input is
    checked here, on the loop; the request is made and read in the stream's
    own thread, and ``thread_id``, ``message_id`` and ``usage`` are readable
    on the stream as they arrive.
    """

    __slots__ = ("_sync",)

    def __init__(self, session: Optional["Session"] = None) -> None:
        self._sync: Threads = api.threads if session is None else session.threads

    list = _awaitable(Threads.list)
    create = _awaitable(Threads.create)
    retrieve = _awaitable(Threads.retrieve)
    get = _awaitable(Threads.get)
    delete = _awaitable(Threads.delete)
    get_messages = _awaitable(Threads.get_messages)
    add_message = _awaitable(Threads.add_message)
    add_messages = _awaitable(Threads.add_messages)
    run = _awaitable(Threads.run)
    get_run = _awaitable(Threads.get_run)
    run_messages = _awaitable(Threads.run_messages)
    rerun_messages = _awaitable(Threads.rerun_messages)

    def run_stream(self, thread_id: str, *, assistant_id: Optional[str] = None, **options: "Unpack[RunOptions]") -> "AsyncStream[str]":
        """``async for chunk in aio.threads.run_stream(thread_id)``: :meth:`Threads.run_stream`."""
        return self._open("/threads/run", run_body(thread_id, assistant_id, options, stream=True))

    def run_messages_stream(
        self,
        messages: ThreadMessagesArg,
        *,
        thread_id: Optional[str] = None,
        assistant_id: Optional[str] = None,
        model: Optional[str] = None,
        update_interval: Optional[float] = None,
        **options: "Unpack[RunOptions]",
    ) -> "AsyncStream[str]":
        """``async for chunk in aio.threads.run_messages_stream(["Привет"])``: :meth:`Threads.run_messages_stream`."""
        body = run_messages_body(messages, thread_id, assistant_id, model, options, self._sync._session,
                                 stream=True, update_interval=update_interval)
        return self._open("/threads/messages/run", body)

    def rerun_messages_stream(
        self, thread_id: str, *, update_interval: Optional[float] = None, **options: "Unpack[RunOptions]"
    ) -> "AsyncStream[str]":
        """``async for chunk in aio.threads.rerun_messages_stream(thread_id)``: :meth:`Threads.rerun_messages_stream`."""
        return self._open("/threads/messages/rerun", rerun_body(thread_id, options, stream=True, update_interval=update_interval))

    def _open(self, path: str, body: Dict[str, Any]) -> "AsyncStream[str]":
        start, cancel = cancellable(functools.partial(self._sync._stream, path, body))
        return AsyncStream(start, cancel=cancel)


assistants = AsyncAssistants()
"""``await aio.assistants.create(...)``: the assistants API on the shared session (see :class:`AsyncAssistants`)."""

threads = AsyncThreads()
"""``await aio.threads.run_messages(...)``, ``async for chunk in aio.threads.run_stream(...)``: see :class:`AsyncThreads`."""
