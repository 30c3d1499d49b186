"""Chat: message validation, the request body, ``chat()``, ``ChatStream`` and ``ChatReply``."""

from __future__ import annotations

import functools
import http.client
import json
import math
import socket
from typing import Any, Callable, Dict, Generator, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import requests
from urllib3.exceptions import HTTPError as _Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from .config import CertArg, Config, Timeout
from .errors import APIError, StreamError, StreamTimeoutError
from .reasoning import ReasoningEvents
from .reply_v2 import V2Result, read_header, read_messages, reset_v2_fields
from .request_v2 import adapt_v1_params, build_body_v2, chat_url_v2, choose_contract
from .sse import ChunkParser, iter_event_data
from .stream_v2 import V2ChunkParser
from .structured import OutputSpec

__all__ = [
    "chat", "ChatStream", "ChatReply", "ChatStreamV2", "ChatReplyV2", "Prepared", "normalize_messages",
    "prepare", "send", "prepare_chat", "send_chat", "ROLES",
]

ROLES = ("system", "user", "assistant", "function")
Messages = Union[str, Sequence[Mapping[str, Any]]]

_READ_SIZE = 65536
_DRAIN_LIMIT = 65536


Problem = Optional[Tuple[type, str]]  # (exception class, text) or None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(low: float, high: float = math.inf, *, open_low: bool = False) -> Callable[[Any], Problem]:
    def check(value: Any) -> Problem:
        if not _is_number(value):
            return TypeError, f"must be a finite number, got {value!r}"
        if value < low or value > high or (open_low and value == low):
            bounds = f"{'>' if open_low else '>='} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
            return ValueError, f"must be {bounds}, got {value!r}"
        return None
    return check


def _positive_int(value: Any) -> Problem:
    if isinstance(value, bool) or not isinstance(value, int):
        return TypeError, f"must be an int, got {value!r}"
    return None if value >= 1 else (ValueError, f"must be >= 1, got {value!r}")


def _bool(value: Any) -> Problem:
    return None if isinstance(value, bool) else (TypeError, f"must be a bool, got {value!r}")


def _functions(value: Any) -> Problem:
    if not isinstance(value, (list, tuple)):
        return TypeError, f"must be a list of function descriptions, got {type(value).__name__}"
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            return ValueError, f"[{i}] must be a dict with a non-empty 'name'"
    return None


def _function_call(value: Any) -> Problem:
    if value in ("auto", "none"):
        return None
    if isinstance(value, Mapping) and isinstance(value.get("name"), str) and value["name"]:
        return None
    return ValueError, f"must be 'auto', 'none' or {{'name': ...}}, got {value!r}"


def _strings(value: Any) -> Problem:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return None
    return TypeError, "must be a list of str"


def _json(value: Any) -> Problem:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return TypeError, f"cannot be sent as JSON ({exc})"
    return None


# Body parameters we know; anything else is passed through if JSON can carry it.
_PARAMS: Dict[str, Callable[[Any], Problem]] = {
    "temperature": _number(0, open_low=True),
    "top_p": _number(0, 1),
    "n": _positive_int,
    "max_tokens": _positive_int,
    "repetition_penalty": _number(0, open_low=True),
    "update_interval": _number(0),
    "profanity_check": _bool,
    "functions": _functions,
    "function_call": _function_call,
    "flags": _strings,
}
_RESERVED = {"messages": "pass messages as the first argument", "stream": "pass stream= as a keyword of chat()"}


def normalize_messages(messages: Messages) -> List[Dict[str, Any]]:
    """Validate ``messages`` and return a fresh list of plain dicts.

    A ``str`` becomes one user message. Raises ``TypeError``/``ValueError``
    naming the bad item.
    """
    if isinstance(messages, str):
        if not messages.strip():
            raise ValueError("messages: the prompt is an empty str")
        return [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping):
        raise TypeError("messages must be a str or a list of message dicts; got one dict (wrap it in a list)")
    if not isinstance(messages, (list, tuple)):
        raise TypeError(f"messages must be a str or a list of message dicts, got {type(messages).__name__}")
    if not messages:
        raise ValueError("messages is empty")
    result = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(f"messages[{i}] must be a dict with 'role' and 'content', got {type(message).__name__}")
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(f"messages[{i}]['role'] must be one of {', '.join(ROLES)}, got {role!r}")
        content = message.get("content")
        if content is None and role == "assistant" and message.get("function_call"):
            content = ""  # a function-call turn carries no text
        if not isinstance(content, str):
            raise TypeError(f"messages[{i}]['content'] must be a str, got {type(content).__name__}")
        attachments = message.get("attachments")
        if attachments is not None and _strings(attachments):
            raise TypeError(f"messages[{i}]['attachments'] must be a list of file id str")
        clean = dict(message)
        clean["content"] = content
        result.append(clean)
    return result


def build_body(
    messages: List[Dict[str, Any]],
    model: str,
    stream: bool,
    update_interval: Optional[float],
    params: Mapping[str, Any],
) -> Dict[str, Any]:
    """The JSON body of ``/chat/completions``; ``None`` values are left out."""
    if not isinstance(model, str) or not model.strip():
        raise (TypeError if not isinstance(model, str) else ValueError)(f"model must be a non-empty str, got {model!r}")
    if not isinstance(stream, bool):
        raise TypeError(f"stream must be a bool, got {type(stream).__name__}")
    body: Dict[str, Any] = {"model": model, "messages": messages}
    if stream:
        body["stream"] = True
        if update_interval is not None:
            params = {**params, "update_interval": update_interval}
    for name, value in params.items():
        if value is None:
            continue
        if name in _RESERVED:
            raise TypeError(f"{name}: {_RESERVED[name]}")
        problem = _PARAMS.get(name, _json)(value)
        if problem:
            raise problem[0](f"{name} {problem[1]}")
        body[name] = value
    return body


class _ChatResult(ReasoningEvents):
    """What every chat reply tells besides its text."""

    finish_reason: Optional[str]
    usage: Optional[Dict[str, Any]]
    model: Optional[str]
    created: Optional[int]
    function_call: Optional[Dict[str, Any]]
    functions_state_id: Optional[str]
    request_id: Optional[str]
    api_version = "v1"

    def __init__(self, request_id: Optional[str]) -> None:
        self.finish_reason = None
        self.usage = None
        self.usage_raw: Optional[Dict[str, Any]] = None  # usage as the server sent it
        self.reasoning = ""  # the model's reasoning, apart from the answer (see reasoning.py)
        self.session: Any = None  # the Session that made the request, when known
        self.model = None
        self.created = None
        self.function_call = None
        self.functions_state_id = None
        self.request_id = request_id

    def assistant_message(self) -> Dict[str, Any]:
        """The assistant turn to append to the history for the next call."""
        message: Dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.function_call:
            message["function_call"] = self.function_call
        if self.functions_state_id:
            message["functions_state_id"] = self.functions_state_id
        return message

    def function_result(self, result: Any) -> List[Dict[str, Any]]:
        """The two messages that answer this reply's function call, to append to the history.

        ``[assistant turn with function_call (and functions_state_id),
        {"role": "function", "name": ..., "content": json.dumps(result)}]``;
        ``result`` is any JSON-serialisable value, usually a dict. A stream
        not yet read to the end is read first (the call arrives at its end).

        Raises:
            ValueError: the reply did not call a function.
            TypeError: ``result`` cannot be sent as JSON.
        """
        for _ in self:  # a stream's function_call and text are complete only at its end
            pass
        call = self.function_call
        if not call or not isinstance(call.get("name"), str):
            raise ValueError(f"the reply did not call a function (finish_reason {self.finish_reason!r})")
        try:
            content = json.dumps(result, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"result cannot be sent as JSON ({exc})") from None
        return [self.assistant_message(), {"role": "function", "name": call["name"], "content": content}]

    def __iter__(self) -> Iterator[str]:
        return iter(())

    @property
    def text(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text


class ChatReply(_ChatResult):
    """A whole reply (``stream=False``). Iterating it yields the text once."""

    def __init__(self, payload: Any, request_id: Optional[str] = None) -> None:
        super().__init__(request_id)
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise StreamError(f"the reply has no choices (request id {request_id})")
        choice = choices[0]
        message: Dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
        self.message = message
        self.content: str = message.get("content") or ""
        self.finish_reason = choice.get("finish_reason")
        self.usage = self.usage_raw = payload.get("usage")
        self.reasoning = message.get("reasoning_content") or ""
        self.model = payload.get("model")
        self.created = payload.get("created")
        self.function_call = message.get("function_call")
        self.functions_state_id = message.get("functions_state_id")
        self.raw: Dict[str, Any] = payload

    @property
    def text(self) -> str:
        return self.content

    def __iter__(self) -> Iterator[str]:
        if self.content:
            yield self.content

    def __repr__(self) -> str:
        return f"<ChatReply finish_reason={self.finish_reason!r} chars={len(self.content)} request_id={self.request_id!r}>"


class ChatStream(_ChatResult):
    """The text of a streamed reply, chunk by chunk.

    Iterate it for non-empty ``str`` chunks as they arrive. ``finish_reason``,
    ``usage``, ``model`` and ``function_call`` are filled as their events
    arrive (``usage`` with the last one). The stream owns its HTTP response
    and closes it however iteration stops: exhaustion, ``break`` (on garbage
    collection), an exception, :meth:`close` or ``with``. A stream read to the
    end returns its connection to the pool for the next call.

    Raises (while iterating), after yielding every chunk that arrived intact:
        StreamError: the stream was cut or carried malformed data.
        StreamTimeoutError: it stalled for longer than the read timeout.
        APIError: the server sent an error object inside the stream.
    """

    _parser_class = ChunkParser
    _emit_reasoning = False  # set by iter_events(): the parser hands out reasoning pieces too

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.headers.get("x-request-id"))
        self._response = response
        self._parts: List[str] = []
        self._chunks: Generator[str, None, None] = self._iterate()

    @property
    def text(self) -> str:
        """Everything received so far, joined."""
        return "".join(self._parts)

    def __iter__(self) -> "ChatStream":
        return self

    def __next__(self) -> str:
        return next(self._chunks)

    def __enter__(self) -> "ChatStream":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and release the connection (idempotent)."""
        try:
            self._chunks.close()
        except ValueError:  # being read in another thread right now: unblock it instead
            self.abort()

    def abort(self) -> None:
        """Shut the socket down so that a read blocked in another thread returns now.

        Safe to call from any thread; the reading thread then ends the stream.
        """
        self._aborted = True
        connection = getattr(self._response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    _aborted = False

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<ChatStream finish_reason={self.finish_reason!r} request_id={self.request_id!r}>"

    def _iterate(self) -> Generator[str, None, None]:
        response = self._response
        parser = self._parser = self._parser_class(self)
        parser.emit_reasoning = self._emit_reasoning
        at_eof = False
        try:
            feed, keep = parser.feed, self._parts.append
            for data in iter_event_data(_read_chunks(response.raw)):
                text = feed(data)
                if text:
                    if text.__class__ is str:
                        keep(text)
                        yield text
                    else:  # pieces, reasoning among them: only while iter_events() runs
                        for piece in text:
                            if piece.__class__ is str:
                                keep(piece)
                            yield piece
                if parser.done:
                    break
            else:
                _check_length(response.raw)
                at_eof = True
            if not parser.complete:
                raise StreamError(
                    f"the stream ended after {parser.events} events without [DONE] or a finish reason"
                    f" (request id {self.request_id})"
                )
            if not at_eof:
                try:
                    at_eof = _drain(response.raw)
                except Exception:  # the reply is complete; only the connection's reuse is lost
                    at_eof = False
        except APIError as exc:
            exc.request_id = exc.request_id or self.request_id
            raise
        except UnicodeDecodeError as exc:  # sseclient-py decodes each line as UTF-8
            raise StreamError(
                f"the stream carried invalid UTF-8 after {parser.events} events (request id {self.request_id})"
            ) from exc
        except (ReadTimeoutError, socket.timeout) as exc:  # urllib3's, or the socket's on the direct read
            if self._aborted:
                return
            raise StreamTimeoutError(
                f"the stream stalled for longer than the read timeout after {parser.events} events"
                f" (request id {self.request_id})"
            ) from exc
        except (_Urllib3Error, OSError, http.client.HTTPException) as exc:  # IncompleteRead on the direct read
            if self._aborted:
                return
            raise StreamError(
                f"the stream was cut after {parser.events} events: {type(exc).__name__}"
                f" (request id {self.request_id})"
            ) from exc
        finally:
            _release(response, reusable=at_eof)


class ChatReplyV2(V2Result, ChatReply):
    """A whole v2 reply (``stream=False``): the answer's text parts joined; see :class:`V2Result`."""

    def __init__(self, payload: Any, request_id: Optional[str] = None) -> None:
        _ChatResult.__init__(self, request_id)
        if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
            raise StreamError(f"the v2 reply has no messages (request id {request_id})")
        reset_v2_fields(self)
        read_header(self, payload)
        texts, _ = read_messages(self, payload)
        self.content = "".join(texts)
        messages = [m for m in payload["messages"] if isinstance(m, dict)]
        self.message: Dict[str, Any] = messages[-1] if messages else {}
        self.functions_state_id = self.tools_state_id
        self.raw = payload

    def __iter__(self) -> Iterator[str]:
        return ChatReply.__iter__(self)

    def __repr__(self) -> str:
        return f"<ChatReplyV2 finish_reason={self.finish_reason!r} chars={len(self.content)} request_id={self.request_id!r}>"


class ChatStreamV2(V2Result, ChatStream):
    """A v2 stream: the same iteration and attributes as :class:`ChatStream`, plus :class:`V2Result`'s."""

    _parser_class = V2ChunkParser

    def __init__(self, response: requests.Response) -> None:
        reset_v2_fields(self)
        ChatStream.__init__(self, response)

    def __iter__(self) -> "ChatStreamV2":
        return self

    def __repr__(self) -> str:
        return f"<ChatStreamV2 finish_reason={self.finish_reason!r} request_id={self.request_id!r}>"


def _body_read1(raw: Any) -> Optional[Callable[[int], bytes]]:
    """``read1`` of the body: http.client's own when urllib3 would only pass the bytes through.

    read1 returns whatever has arrived (up to the size): a stream sent without
    chunked encoding does not stall waiting for 64 KiB. urllib3's ``read1``
    costs a few microseconds a call on top of http.client's (error translation,
    decoder and length bookkeeping), and a chunked stream takes one call per
    event; with no content encoding to undo, http.client's is called directly
    and its errors are mapped in :meth:`ChatStream._iterate`.
    """
    fp = getattr(raw, "_fp", None)
    if (
        isinstance(fp, http.client.HTTPResponse)
        and getattr(raw, "_decoder", None) is None
        and not len(getattr(raw, "_decoded_buffer", b""))
        and raw.headers.get("content-encoding", "identity").lower() == "identity"
    ):
        return fp.read1
    return getattr(raw, "read1", None)  # None before urllib3 2.3


def _read_chunks(raw: Any) -> Iterator[bytes]:
    read = _body_read1(raw)
    if read is None:  # urllib3 < 2.3
        return iter(raw.stream(_READ_SIZE))
    # iter(callable, sentinel) runs in C: no generator frame between the socket and the parser.
    return iter(functools.partial(read, _READ_SIZE), b"")


def _check_length(raw: Any) -> None:
    """Raise when a ``Content-Length`` body ended early (http.client's read1 just returns b"")."""
    fp = getattr(raw, "_fp", None)
    if isinstance(fp, http.client.HTTPResponse) and fp.length:
        raise http.client.IncompleteRead(b"", fp.length)


def _drain(raw: Any) -> bool:
    """After ``[DONE]``: read the end of the body so the connection can be reused."""
    read = _body_read1(raw) or raw.read
    left = _DRAIN_LIMIT
    while left > 0:
        data = read(left)
        if not data:
            return True
        left -= len(data)
    return False


def _release(response: requests.Response, *, reusable: bool) -> None:
    if reusable:
        response.raw.release_conn()  # fully read: back to the pool for the next call
    response.close()  # otherwise this closes the socket: a half-read body cannot be reused


def prepare_chat(
    messages: Messages,
    *,
    model: str,
    stream: bool,
    update_interval: Optional[float],
    params: Mapping[str, Any],
) -> Dict[str, Any]:
    """Validate everything and build the body; no I/O, so it can run on an event loop."""
    return build_body(normalize_messages(messages), model, stream, update_interval, params)


def send_chat(session: Any, body: Dict[str, Any], *, url: str = "/chat/completions", v2: bool = False) -> Union[ChatStream, ChatReply]:
    """Send a prepared body on ``session`` (a :class:`Session`) and wrap the reply (``v2``: the v2 classes)."""
    stream = bool(body.get("stream"))
    headers = {"Accept": "text/event-stream"} if stream else {"Accept": "application/json"}
    response = session.call("POST", url, json=body, stream=stream, headers=headers)
    request_id = response.headers.get("x-request-id")
    if not stream:
        try:
            payload = response.json()
        except ValueError:
            raise StreamError(f"the reply is not JSON (request id {request_id})") from None
        return ChatReplyV2(payload, request_id) if v2 else ChatReply(payload, request_id)
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("text/event-stream"):
        response.close()
        raise StreamError(f"expected a text/event-stream reply, got {content_type or 'no content type'!r} (request id {request_id})")
    return ChatStreamV2(response) if v2 else ChatStream(response)


class Prepared(NamedTuple):
    """A checked chat request: its contract, its JSON body and its checked ``response_format``."""

    api_version: str
    body: Dict[str, Any]
    output: Optional[OutputSpec]


def _check_param(name: str, value: Any) -> None:
    problem = _PARAMS.get(name, _json)(value)
    if problem:
        raise problem[0](f"{name} {problem[1]}")


def prepare(
    messages: Messages,
    *,
    model: str,
    stream: bool,
    update_interval: Optional[float],
    params: Mapping[str, Any],
    api_version: Optional[str] = None,
) -> Prepared:
    """Choose the contract (see :mod:`request_v2`), validate everything, build the body; no I/O."""
    contract = choose_contract(api_version, params)
    if contract == "v2":
        if not isinstance(model, str) or not model.strip():
            raise (TypeError if not isinstance(model, str) else ValueError)(f"model must be a non-empty str, got {model!r}")
        if not isinstance(stream, bool):
            raise TypeError(f"stream must be a bool, got {type(stream).__name__}")
        body, output = build_body_v2(messages, model, stream, update_interval, params, _check_param)
        return Prepared("v2", body, output)
    v1_params, output = adapt_v1_params(dict(params))
    return Prepared("v1", prepare_chat(messages, model=model, stream=stream, update_interval=update_interval, params=v1_params), output)


def send(session: Any, prepared: Prepared) -> Union[ChatStream, ChatReply]:
    """Send a :class:`Prepared` request on ``session`` and wrap the reply for its contract."""
    if prepared.api_version == "v2":
        result = send_chat(session, prepared.body, url=chat_url_v2(session.config.base_url), v2=True)
    else:
        result = send_chat(session, prepared.body)
    result.session = session
    return result


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
    api_version: Optional[str] = None,
    **params: Any,
) -> Union[ChatStream, ChatReply]:
    """Ask GigaChat; return a :class:`ChatStream` (default) or, with ``stream=False``, a :class:`ChatReply`.

    ``messages`` is a ``str`` or a list of ``{"role", "content"}`` dicts. The
    configuration keywords fall back to ``GIGACHAT_*`` environment variables;
    calls with the same configuration share one connection pool and one token.
    Every other keyword goes into the JSON body (``temperature``, ``max_tokens``,
    ``functions``, ...), ``None`` values left out.

    ``api_version`` ("v1" or "v2", or ``GIGACHAT_API_VERSION``) picks the
    chat contract; unset, it is v1 unless a v2-only feature (``tools``,
    ``tool_config``, a regex ``response_format``, ...) is used. On v2 the
    result is a :class:`ChatStreamV2` / :class:`ChatReplyV2`: the same
    iteration and attributes, plus the v2 ones (``files``, ``sources``, ...).
    ``response_format=`` and ``reasoning_effort=`` work on both.

    Raises:
        MissingAuthError, ValueError, TypeError: before any request.
        AuthenticationError, APIError (and subclasses), TransportError, StreamError.
    """
    from .session import shared_session

    config = Config.resolve(
        api_key=api_key, access_token=access_token, scope=scope, base_url=base_url, auth_url=auth_url,
        ca_bundle=ca_bundle, verify=verify, cert=cert, proxy=proxy, timeout=timeout, max_retries=max_retries,
        api_version=api_version,
    )
    prepared = prepare(messages, model=model or config.model, stream=stream, update_interval=update_interval,
                       params=params, api_version=config.api_version)
    return send(shared_session(config), prepared)
