"""Threads: conversations kept on the server, run by a model or an assistant.

``session.threads`` (and :data:`gigachat_lite.threads`, on the shared
session of the environment's configuration) is the official SDK 0.2.4a1's
``client.threads``, with the same paths and bodies (``reference/API_FACTS.md`` 4.2):

================================================  ====================================================
``list(assistants_ids, limit, before)``           ``GET /threads``
``create()``                                      ``POST /threads``
``retrieve(threads_ids)`` / ``get(thread_id)``    ``POST /threads/retrieve``
``delete(thread_id)``                             ``POST /threads/delete``
``get_messages(thread_id, limit, before)``        ``GET /threads/messages``
``add_message(s)(thread_id, ...)``                ``POST /threads/messages``
``run(thread_id)`` / ``run_stream(...)``          ``POST /threads/run``
``get_run(thread_id)``                            ``GET /threads/run``
``run_messages(messages)`` / ``..._stream``       ``POST /threads/messages/run``
``rerun_messages(thread_id)`` / ``..._stream``    ``POST /threads/messages/rerun``
================================================  ====================================================

The run settings (:class:`RunOptions`: ``temperature``, ``max_tokens``,
``limit`` of context messages, ``functions``, ...) are keywords, merged flat into
the body as the SDK merges its ``ThreadRunOptions``. A run with messages answers
as a :class:`ThreadReply` (a :class:`~.results.ChatReply` with ``thread_id`` and
``message_id``), or streamed, as a :class:`ThreadStream` (a
:class:`~.stream.ChatStream`): thread streams use v1 framing, and every chunk
carries its own ``usage`` (the first the prompt's tokens, then each piece's),
which the stream adds up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, TypedDict, Union

from ._assistants import JSON_ACCEPT, check_functions, check_id, check_ids, check_json, check_optional_id, optional
from ._chat.reply import ChunkParser, Feed, Usage
from ._chat.request import check_param, normalize_messages
from .config import Config
from .errors import InvalidResponseError, NotFoundError
from .results import ChatReply, ChatResult, json_object, json_reply
from .stream import ChatStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .session import Session

__all__ = [
    "Thread", "ThreadMessage", "ThreadMessages", "ThreadRun", "ThreadResult", "ThreadReply", "ThreadStream", "Threads",
    "RunOptions", "ThreadMessagesArg",
]

# A str is one user message; so is each str item of a list.
ThreadMessagesArg = Union[str, Sequence[Union[str, Mapping[str, Any]]]]


class RunOptions(TypedDict, total=False):
    """The settings of a run (the SDK's ``ThreadRunOptions``); ``None`` leaves one out."""

    temperature: Optional[float]
    top_p: Optional[float]
    limit: Optional[int]  # how many of the thread's last messages the model sees (all by default)
    max_tokens: Optional[int]
    repetition_penalty: Optional[float]
    profanity_check: Optional[bool]
    flags: Optional[Sequence[str]]
    function_call: Optional[Union[str, Mapping[str, Any]]]
    functions: Optional[Sequence[Mapping[str, Any]]]


# -- what comes back --------------------------------------------------------------------------


class Thread:
    """A thread, as the server lists it.

    Attributes:
        thread_id: its id (the reply calls it ``id``).
        assistant_id: the assistant it runs with, if any.
        model: its model.
        status: ``in_progress``, ``ready``, ``failed`` or ``deleted``.
        run_lock: whether a run is under way.
        created_at, updated_at: Unix times.
        raw: the reply's object as sent.
    """

    __slots__ = ("thread_id", "assistant_id", "model", "status", "run_lock", "created_at", "updated_at", "raw")

    def __init__(self, payload: Any) -> None:
        thread_id = (payload.get("id") or payload.get("thread_id")) if isinstance(payload, dict) else None
        if not isinstance(thread_id, str) or not thread_id:
            raise InvalidResponseError("the thread in the reply has no id")
        self.thread_id: str = thread_id
        self.assistant_id: Optional[str] = optional(payload, "assistant_id", str)
        self.model: Optional[str] = optional(payload, "model", str)
        self.status: Optional[str] = optional(payload, "status", str)
        self.run_lock: Optional[bool] = optional(payload, "run_lock", bool)
        self.created_at: Optional[int] = optional(payload, "created_at", int)
        self.updated_at: Optional[int] = optional(payload, "updated_at", int)
        self.raw: Dict[str, Any] = payload

    def __repr__(self) -> str:
        return f"<Thread {self.thread_id!r} model={self.model!r} status={self.status!r}>"


class ThreadMessage:
    """A message of a thread.

    Attributes:
        message_id: its id.
        role: ``user``, ``assistant``, ``system`` or ``function`` (``None`` in
            :meth:`Threads.add_messages`' reply, which names only ids and times).
        content: its text.
        attachments: its files, ``{"file_id", "name"}``.
        function_call: the function an assistant message called, if any.
        finish_reason: why an assistant message ended.
        model: the model, when the server says.
        created_at: Unix time.
        raw: the reply's object as sent.
    """

    __slots__ = ("message_id", "role", "content", "attachments", "function_call", "finish_reason", "model", "created_at", "raw")

    def __init__(self, payload: Any) -> None:
        if not isinstance(payload, dict) or not isinstance(payload.get("message_id"), str):
            raise InvalidResponseError("a message in the reply has no message_id")
        self.message_id: str = payload["message_id"]
        self.role: Optional[str] = optional(payload, "role", str)
        self.content: str = optional(payload, "content", str) or ""
        attachments = payload.get("attachments")
        self.attachments: List[Dict[str, Any]] = [a for a in attachments if isinstance(a, dict)] if isinstance(attachments, list) else []
        self.function_call: Optional[Dict[str, Any]] = optional(payload, "function_call", dict)
        self.finish_reason: Optional[str] = optional(payload, "finish_reason", str)
        self.model: Optional[str] = optional(payload, "model", str)
        self.created_at: Optional[int] = optional(payload, "created_at", int)
        self.raw: Dict[str, Any] = payload

    def __repr__(self) -> str:
        return f"<ThreadMessage {self.message_id!r} role={self.role!r} chars={len(self.content)}>"


class ThreadMessages:
    """Messages of one thread (``thread_id``), oldest first; iterating, ``len()`` and indexing go over ``messages``.

    Attributes:
        thread_id: the thread (a new one when :meth:`Threads.add_messages` made it).
        messages: the :class:`ThreadMessage` list.
        raw: the reply as sent.
    """

    __slots__ = ("thread_id", "messages", "raw")

    def __init__(self, payload: Any) -> None:
        messages = payload.get("messages") if isinstance(payload, dict) else None
        if not isinstance(messages, list) or not isinstance(payload.get("thread_id"), str):
            raise InvalidResponseError("the thread messages reply has no thread_id and messages list")
        self.thread_id: str = payload["thread_id"]
        self.messages: List[ThreadMessage] = [ThreadMessage(m) for m in messages]
        self.raw: Dict[str, Any] = payload

    def __iter__(self) -> Iterator[ThreadMessage]:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def __getitem__(self, index: int) -> ThreadMessage:
        return self.messages[index]

    def __repr__(self) -> str:
        return f"<ThreadMessages thread_id={self.thread_id!r} count={len(self.messages)}>"


class ThreadRun:
    """A run's state: what :meth:`Threads.run` (``in_progress``) and :meth:`Threads.get_run` say.

    Attributes:
        status: ``in_progress``, ``ready``, ``failed`` or ``deleted``.
        thread_id: the thread.
        created_at: when the run started (:meth:`Threads.run`'s reply).
        updated_at, model, messages: the run's last change, its model and the
            messages it made (:meth:`Threads.get_run`'s reply; empty otherwise).
        raw: the reply as sent.
    """

    __slots__ = ("status", "thread_id", "created_at", "updated_at", "model", "messages", "raw")

    def __init__(self, payload: Any) -> None:
        if not isinstance(payload, dict) or not isinstance(payload.get("status"), str) or not isinstance(payload.get("thread_id"), str):
            raise InvalidResponseError("the thread run reply has no status and thread_id")
        self.status: str = payload["status"]
        self.thread_id: str = payload["thread_id"]
        self.created_at: Optional[int] = optional(payload, "created_at", int)
        self.updated_at: Optional[int] = optional(payload, "updated_at", int)
        self.model: Optional[str] = optional(payload, "model", str)
        messages = payload.get("messages")
        self.messages: List[ThreadMessage] = [ThreadMessage(m) for m in messages] if isinstance(messages, list) else []
        self.raw: Dict[str, Any] = payload

    def __repr__(self) -> str:
        return f"<ThreadRun thread_id={self.thread_id!r} status={self.status!r}>"


class ThreadResult(ChatResult):
    """What a thread run's reply adds to a chat reply: its thread and message, and answers that go to the thread."""

    @property
    def thread_id(self) -> Optional[str]:
        """The thread the reply was added to (a new one when the run named none)."""
        return self._fields.thread_id

    @property
    def message_id(self) -> Optional[str]:
        """The id of the message the reply is in the thread."""
        return self._fields.message_id

    def function_result(self, result: Any) -> List[Dict[str, Any]]:
        """The ``function`` message answering this reply's function call, as a list of one.

        The thread already holds the call, so this is what goes back:
        ``threads.run_messages(reply.function_result(value), thread_id=reply.thread_id)``.
        A stream is read to its end first.

        Raises:
            ValueError: the reply did not call a function.
            TypeError: ``result`` cannot be sent as JSON.
        """
        return super().function_result(result)[1:]


class ThreadReply(ThreadResult, ChatReply):
    """A whole run's reply (:meth:`Threads.run_messages`, :meth:`Threads.rerun_messages`): a :class:`ChatReply` with ``thread_id`` and ``message_id``."""

    def __init__(self, payload: Any, request_id: Optional[str] = None) -> None:
        message = payload.get("message") if isinstance(payload, dict) else None
        if not isinstance(message, dict):
            raise InvalidResponseError(f"the thread run reply has no message (request id {request_id})")
        # The reply is a chat reply with its one choice's message and finish_reason at the top.
        super().__init__({**payload, "choices": [{"message": message, "finish_reason": payload.get("finish_reason")}]}, request_id)
        self.raw = payload
        for name in ("thread_id", "message_id"):
            if isinstance(payload.get(name), str):
                setattr(self._fields, name, payload[name])


class _RunChunks(ChunkParser):
    """A thread stream's chunks: v1's, each with its own ``usage``, which are added up (``usage_raw`` is the last one's)."""

    __slots__ = ()

    def _choices(self, chunk: Dict[str, Any], choices: Any) -> Feed:
        total = self.target.usage
        text = super()._choices(chunk, choices)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage:
            self.target.usage_raw = usage
            self.target.usage = Usage.of(_add_usage(total, usage))
        return text


def _add_usage(total: Optional[Dict[str, Any]], usage: Dict[str, Any]) -> Dict[str, Any]:
    result = dict(total or {})
    for key, value in usage.items():
        before = result.get(key, 0)
        if _is_int(value) and _is_int(before):
            result[key] = before + value
        else:
            result[key] = value
    return result


class ThreadStream(ThreadResult, ChatStream):
    """A run's streamed reply: a :class:`ChatStream` whose ``thread_id``, ``message_id`` and ``usage`` (the run's total) fill in as chunks arrive."""

    _parser_class = _RunChunks


# -- the API ----------------------------------------------------------------------------------


class Threads:
    """The threads API: ``session.threads`` or :data:`gigachat_lite.threads`.

    Every argument is checked before any request (``TypeError``/``ValueError``
    naming it); failures are gigachat_lite's exceptions (an unknown thread:
    :class:`NotFoundError`). ``**options`` are :class:`RunOptions`.
    """

    __slots__ = ("_session",)

    def __init__(self, session: Callable[[], "Session"]) -> None:
        self._session = session  # called per request: the shared namespace follows reset() and the environment

    # -- threads

    def list(
        self, assistants_ids: Optional[Sequence[str]] = None, limit: Optional[int] = None, before: Optional[int] = None
    ) -> List[Thread]:
        """``GET /threads``: the threads (of the given assistants), newest first; ``limit`` of them, created ``before`` a Unix time."""
        params: Dict[str, Any] = {}
        ids = check_ids(assistants_ids, "assistants_ids")
        if ids:
            params["assistants_ids"] = ids  # one assistants_ids=... per id, as the SDK sends it
        params.update(_window(limit, before))
        return _threads(self._get("/threads", params))

    def create(self) -> Thread:
        """``POST /threads``: a new, empty thread."""
        return Thread(json_reply(self._post("/threads", {})))

    def retrieve(self, threads_ids: Sequence[str]) -> List[Thread]:
        """``POST /threads/retrieve``: the threads with these ids (unknown ids are left out)."""
        ids = check_ids(threads_ids, "threads_ids")
        if not ids:
            raise ValueError("threads_ids is empty")
        return _threads(json_reply(self._post("/threads/retrieve", {"threads_ids": ids})))

    def get(self, thread_id: str) -> Thread:
        """One thread (``POST /threads/retrieve`` with its id).

        Raises:
            NotFoundError: no such thread.
        """
        found = self.retrieve([check_id(thread_id, "thread_id")])
        if not found:
            raise NotFoundError(f"no thread {thread_id!r}", status_code=404)
        return found[0]

    def delete(self, thread_id: str) -> bool:
        """``POST /threads/delete``: delete a thread; ``True`` (the server answers an empty 200)."""
        self._post("/threads/delete", {"thread_id": check_id(thread_id, "thread_id")})
        return True

    # -- messages

    def get_messages(self, thread_id: str, limit: Optional[int] = None, before: Optional[int] = None) -> ThreadMessages:
        """``GET /threads/messages``: the thread's messages, oldest first; the last ``limit``, created ``before`` a Unix time."""
        params: Dict[str, Any] = {"thread_id": check_id(thread_id, "thread_id"), **_window(limit, before)}
        return ThreadMessages(self._get("/threads/messages", params))

    def add_message(self, thread_id: str, message: Union[str, Mapping[str, Any]]) -> ThreadMessages:
        """``POST /threads/messages``: add one message (a ``str`` is a user message); the new message's id and time."""
        if isinstance(message, Mapping) or isinstance(message, str):
            return self.add_messages(check_id(thread_id, "thread_id"), [message])
        raise TypeError(f"message must be a str or a message dict, got {type(message).__name__}")

    def add_messages(
        self,
        thread_id: Optional[str],
        messages: ThreadMessagesArg,
        *,
        model: Optional[str] = None,
        assistant_id: Optional[str] = None,
    ) -> ThreadMessages:
        """``POST /threads/messages``: add messages without running; their ids and times, and the thread's id.

        ``thread_id=None`` starts a new thread, with ``assistant_id``'s model
        or ``model`` (default: the session's). Messages are ``str`` (user
        messages) or ``{"role", "content", "attachments"?: [file ids]}`` dicts.
        """
        body = _messages_body(messages, thread_id, assistant_id, model, self._session)
        return ThreadMessages(json_reply(self._post("/threads/messages", body)))

    # -- runs

    def run(self, thread_id: str, *, assistant_id: Optional[str] = None, **options: "Unpack[RunOptions]") -> ThreadRun:
        """``POST /threads/run``: start answering the thread's last messages; the run's state (``in_progress``).

        Follow it with :meth:`get_run`, or use :meth:`run_stream`.
        """
        return ThreadRun(json_reply(self._post("/threads/run", run_body(thread_id, assistant_id, options, stream=False))))

    def run_stream(self, thread_id: str, *, assistant_id: Optional[str] = None, **options: "Unpack[RunOptions]") -> ThreadStream:
        """``POST /threads/run`` streamed: the answer to the thread's last messages, chunk by chunk."""
        return self._stream("/threads/run", run_body(thread_id, assistant_id, options, stream=True))

    def get_run(self, thread_id: str) -> ThreadRun:
        """``GET /threads/run``: the last run's state and the messages it made."""
        return ThreadRun(self._get("/threads/run", {"thread_id": check_id(thread_id, "thread_id")}))

    def run_messages(
        self,
        messages: ThreadMessagesArg,
        *,
        thread_id: Optional[str] = None,
        assistant_id: Optional[str] = None,
        model: Optional[str] = None,
        **options: "Unpack[RunOptions]",
    ) -> ThreadReply:
        """``POST /threads/messages/run``: add messages and answer them; a :class:`ThreadReply`.

        Without ``thread_id`` a new thread starts (``reply.thread_id``), run
        by ``assistant_id`` or ``model`` (default: the session's).
        """
        body = run_messages_body(messages, thread_id, assistant_id, model, options, self._session)
        return self._reply("/threads/messages/run", body)

    def run_messages_stream(
        self,
        messages: ThreadMessagesArg,
        *,
        thread_id: Optional[str] = None,
        assistant_id: Optional[str] = None,
        model: Optional[str] = None,
        update_interval: Optional[float] = None,
        **options: "Unpack[RunOptions]",
    ) -> ThreadStream:
        """:meth:`run_messages` streamed: a :class:`ThreadStream`."""
        body = run_messages_body(messages, thread_id, assistant_id, model, options, self._session,
                                 stream=True, update_interval=update_interval)
        return self._stream("/threads/messages/run", body)

    def rerun_messages(self, thread_id: str, **options: "Unpack[RunOptions]") -> ThreadReply:
        """``POST /threads/messages/rerun``: answer the last run's messages again (the old answer is replaced)."""
        return self._reply("/threads/messages/rerun", rerun_body(thread_id, options))

    def rerun_messages_stream(
        self, thread_id: str, *, update_interval: Optional[float] = None, **options: "Unpack[RunOptions]"
    ) -> ThreadStream:
        """:meth:`rerun_messages` streamed: a :class:`ThreadStream`."""
        return self._stream("/threads/messages/rerun", rerun_body(thread_id, options, stream=True, update_interval=update_interval))

    # -- sending (the async adapter builds a body on the loop, then calls _stream() in the stream's thread)

    def _reply(self, path: str, body: Dict[str, Any]) -> ThreadReply:
        """Send a checked run ``body`` to ``path``; the whole reply."""
        session = self._session()
        response = session.call("POST", path, json=body, headers=JSON_ACCEPT)
        reply = ThreadReply(json_reply(response), response.headers.get("x-request-id"))
        reply.session = session
        return reply

    def _stream(self, path: str, body: Dict[str, Any]) -> ThreadStream:
        """Send a checked run ``body`` (with ``"stream": true``) to ``path``; the reply as a stream."""
        session = self._session()
        stream = session._open_stream(path, body, ThreadStream)
        stream.session = session
        return stream

    def _get(self, path: str, params: Dict[str, Any]) -> Any:
        return json_reply(self._session().call("GET", path, params=params, headers=JSON_ACCEPT))

    def _post(self, path: str, body: Dict[str, Any]) -> Any:
        return self._session().call("POST", path, json=body, headers=JSON_ACCEPT)


# -- request bodies, as the SDK builds them (checked; no I/O but the session's default model) ------


def run_body(thread_id: Any, assistant_id: Any, options: Mapping[str, Any], *, stream: bool) -> Dict[str, Any]:
    """``POST /threads/run``'s body: ``{options..., "thread_id", "assistant_id"}`` (+ ``"stream": true``)."""
    body = {**run_options(options), "thread_id": check_id(thread_id, "thread_id"),
            "assistant_id": check_optional_id(assistant_id, "assistant_id")}
    if stream:
        body["stream"] = True
    return body


def run_messages_body(
    messages: Any, thread_id: Any, assistant_id: Any, model: Any, options: Mapping[str, Any],
    session: Callable[[], "Session"], *, stream: bool = False, update_interval: Any = None,
) -> Dict[str, Any]:
    """``POST /threads/messages/run``'s body: ``{options..., "thread_id", "assistant_id", "model", "messages"}``."""
    body = {**run_options(options), **_messages_body(messages, thread_id, assistant_id, model, session)}
    if stream:
        body.update(_streaming(update_interval))
    return body


def rerun_body(thread_id: Any, options: Mapping[str, Any], *, stream: bool = False, update_interval: Any = None) -> Dict[str, Any]:
    """``POST /threads/messages/rerun``'s body: ``{options..., "thread_id"}``."""
    body = {**run_options(options), "thread_id": check_id(thread_id, "thread_id")}
    if stream:
        body.update(_streaming(update_interval))
    return body


def _streaming(update_interval: Any) -> Dict[str, Any]:
    if update_interval is not None:
        check_param("update_interval", update_interval)
    return {"update_interval": update_interval, "stream": True}  # the SDK sends update_interval null when unset


def _messages_body(
    messages: Any, thread_id: Any, assistant_id: Any, model: Any, session: Callable[[], "Session"]
) -> Dict[str, Any]:
    """``thread_id``, ``assistant_id``, ``model`` and ``messages``, as both message paths take them."""
    thread_id = check_optional_id(thread_id, "thread_id")
    assistant_id = check_optional_id(assistant_id, "assistant_id")
    model = Config.check("model", model)
    if model is not None and (thread_id is not None or assistant_id is not None):
        # The SDK drops the model silently here; a model that would not be used is a mistake worth naming.
        named = "thread_id" if thread_id is not None else "assistant_id"
        raise ValueError(f"model= is for a new thread; with {named}= the {named[:-3]}'s model answers")
    if model is None and thread_id is None and assistant_id is None:
        model = session().config.model
    return {"thread_id": thread_id, "assistant_id": assistant_id, "model": model, "messages": thread_messages(messages)}


def thread_messages(messages: Any) -> List[Dict[str, Any]]:
    """Messages checked (``messages[i]`` named) as v1 chat messages; a ``str`` item is a user message."""
    if isinstance(messages, (list, tuple)):
        items: List[Any] = []
        for i, message in enumerate(messages):
            if isinstance(message, str):
                if not message.strip():
                    raise ValueError(f"messages[{i}] is an empty str")
                message = {"role": "user", "content": message}
            items.append(message)
        messages = items
    result = normalize_messages(messages)
    check_json(result, "messages")
    return result


def run_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    """The :class:`RunOptions` given, checked, ``None`` left out; another keyword is a ``TypeError``."""
    body: Dict[str, Any] = {}
    for name, value in options.items():
        if name not in RunOptions.__annotations__:
            known = ", ".join(RunOptions.__annotations__)
            raise TypeError(f"unknown run option {name!r} (the options are: {known})")
        if value is None:
            continue
        if name == "limit":
            body[name] = _positive(value, "limit")
        elif name == "functions":
            body[name] = check_functions(value)
        else:
            check_param(name, value)
            body[name] = list(value) if name == "flags" else dict(value) if isinstance(value, Mapping) else value
    check_json(body, "the run options")
    return body


def _window(limit: Any, before: Any) -> Dict[str, int]:
    """``limit`` and ``before`` of a listing, each only when given (the SDK sends them only when set)."""
    params = {}
    if limit is not None:
        params["limit"] = _positive(limit, "limit")
    if before is not None:
        params["before"] = _positive(before, "before")
    return params


def _positive(value: Any, what: str) -> int:
    if not _is_int(value):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be >= 1, got {value!r}")
    return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _threads(payload: Any) -> List[Thread]:
    threads = json_object(payload, "threads").get("threads")
    if not isinstance(threads, list):
        raise InvalidResponseError("the threads reply has no 'threads' list")
    return [Thread(item) for item in threads]


