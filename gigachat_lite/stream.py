"""``ChatStream``: a streamed reply, read straight from the socket and parsed as it arrives.

The stream owns its response: however iteration stops (exhaustion, ``break``,
an error, :meth:`ChatStream.close`), the connection is released or closed.
Read failures become our exceptions through :func:`errors.stream_failure`.
"""

from __future__ import annotations

import functools
import http.client
import socket
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, Iterator, List, Optional, Type

import requests

from .deadline import Deadline
from .errors import APIError, StreamError, stream_failure
from .reply_v2 import V2Result, reset_v2_fields
from .results import ChatResult
from .settings_checks import DEFAULT_MAX_EVENT_SIZE
from .sse import ChunkParser, iter_event_data
from .stream_v2 import V2ChunkParser

if TYPE_CHECKING:
    from .coordination.limiter import Lease

__all__ = ["ChatStream", "ChatStreamV2"]

_READ_SIZE = 65536
_DRAIN_LIMIT = 65536


class ChatStream(ChatResult):
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

    _parser_class: Type[ChunkParser] = ChunkParser

    def __init__(
        self, response: requests.Response, lease: Optional["Lease"] = None, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> None:
        # Neither the reader nor the parser holds this object, only the state
        # below: a dropped stream is freed by reference counting at once, never
        # later by the cycle collector inside some other call (see __del__).
        # ``lease``: the concurrency slot the stream occupies (coordination), held by the state.
        self._state = _State(response.headers.get("x-request-id"))
        self._state.lease = lease
        self._state.deadline = getattr(response, "gigachat_deadline", None)  # set by Transport.call under deadline=
        self._response = response
        self._parts: List[str] = []
        self._chunks: Generator[str, None, None] = _read(response, self._state, self._parts, self._parser_class, max_event_size)

    def __getattr__(self, name: str) -> Any:
        # finish_reason, usage, model, ..., request_id: what the parser has learnt so far.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.__dict__["_state"], name)

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
            return
        if not self._state.ended:  # never started: closing the generator ran no finally
            self._state.ended = True
            _release(self._response, reusable=False)
            _let_go(self._state, soon=False)

    def abort(self) -> None:
        """Shut the socket down so that a read blocked in another thread returns now.

        Safe to call from any thread; the reading thread then ends the stream.
        """
        self._state.aborted = True
        connection = getattr(self._response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __del__(self) -> None:
        # A finaliser may run inside another call that holds urllib3's pool lock
        # (the cycle collector runs wherever it likes); returning the connection
        # would wait on that lock forever. So a stream dropped unfinished only
        # closes its socket, and tells the reader's finally to do no more.
        state = self.__dict__.get("_state")
        if state is not None and not state.ended:
            state.finalizing = True
            if state.deadline is not None:
                state.deadline.finish()  # lock-free: the watchdog just forgets it
            _close_socket(self._response)
            _let_go(state, soon=True)

    def __repr__(self) -> str:
        return f"<ChatStream finish_reason={self.finish_reason!r} request_id={self.request_id!r}>"


class _State:
    """What the parser learns as events arrive, and how the reader ended; the stream reads it."""

    def __init__(self, request_id: Optional[str]) -> None:
        self.request_id = request_id
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Dict[str, Any]] = None
        self.model: Optional[str] = None
        self.created: Optional[int] = None
        self.function_call: Optional[Dict[str, Any]] = None
        self.functions_state_id: Optional[str] = None
        self.usage_raw: Optional[Dict[str, Any]] = None
        self.reasoning = ""
        self.emit_reasoning = False  # set by iter_events(): the parser hands out reasoning pieces too
        self.aborted = False  # abort() shut the socket on purpose
        self.finalizing = False  # the stream was dropped unfinished: touch no lock
        self.ended = False
        self.lease: Optional[Lease] = None  # given back however the stream ends
        self.deadline: Optional[Deadline] = None  # the call's overall bound, when there is one


def _read(
    response: requests.Response, state: _State, parts: List[str], parser_class: Type[ChunkParser], limit: int
) -> Generator[str, None, None]:
    """The chunks of ``response``; records what it learns on ``state`` and keeps the text in ``parts``."""
    parser = parser_class(state)
    at_eof = False
    deadline = state.deadline
    try:
        feed, keep = parser.feed, parts.append
        for data in iter_event_data(_read_chunks(response.raw), limit):
            if deadline is not None:
                deadline.got_first_byte()
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
        if deadline is not None and deadline.expired and not parser.complete:
            raise deadline.error(events=parser.events, request_id=state.request_id)
        if not parser.complete:
            raise StreamError(
                f"the stream ended after {parser.events} events without [DONE] or a finish reason"
                f" (request id {state.request_id})"
            )
        if not at_eof:
            try:
                at_eof = _drain(response.raw)
            except Exception:  # the reply is complete; only the connection's reuse is lost
                at_eof = False
    except APIError as exc:
        exc.request_id = exc.request_id or state.request_id
        raise
    except Exception as exc:
        if deadline is not None and deadline.expired and not isinstance(exc, APIError):
            raise deadline.error(events=parser.events, request_id=state.request_id) from exc  # the watchdog cut it
        error = stream_failure(exc, parser.events, state.request_id)
        if error is None:
            raise
        if state.aborted and not isinstance(exc, UnicodeDecodeError):
            return  # abort() shut the socket on purpose: the consumer has gone
        raise error from exc
    finally:
        state.ended = True
        if deadline is not None:
            deadline.finish()
        if state.finalizing:
            _close_socket(response)
        else:
            _release(response, reusable=at_eof)
        _let_go(state, soon=state.finalizing)


class ChatStreamV2(V2Result, ChatStream):
    """A v2 stream: the same iteration and attributes as :class:`ChatStream`, plus :class:`V2Result`'s."""

    _parser_class = V2ChunkParser

    def __init__(
        self, response: requests.Response, lease: Optional["Lease"] = None, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> None:
        ChatStream.__init__(self, response, lease, max_event_size=max_event_size)
        reset_v2_fields(self._state)

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
    and its errors are mapped by :func:`_read`.
    """
    fp = getattr(raw, "_fp", None)
    if (
        isinstance(fp, http.client.HTTPResponse)
        and getattr(raw, "_decoder", None) is None
        and not len(getattr(raw, "_decoded_buffer", b""))
        and raw.headers.get("content-encoding", "identity").lower() == "identity"
    ):
        return fp.read1
    read1: Optional[Callable[..., bytes]] = getattr(raw, "read1", None)  # None before urllib3 2.3
    if read1 is not None and getattr(raw, "headers", {}).get("content-encoding", "identity").lower() != "identity":
        # requests asks urllib3 for the raw bytes; a gzip/deflate body (some proxies
        # compress event streams) is decoded here, as iter_content() would.
        return functools.partial(read1, decode_content=True)
    return read1


def _read_chunks(raw: Any) -> Iterator[bytes]:
    read = _body_read1(raw)
    if read is None:  # urllib3 < 2.3
        return iter(raw.stream(_READ_SIZE, decode_content=True))
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


def _close_socket(response: requests.Response) -> None:
    """Close the connection's socket without going near the pool (and so without a lock)."""
    try:
        response.raw.close()
    except Exception:
        pass


def _release(response: requests.Response, *, reusable: bool) -> None:
    if reusable:
        response.raw.release_conn()  # fully read: back to the pool for the next call
    response.close()  # otherwise this closes the socket: a half-read body cannot be reused


def _let_go(state: _State, *, soon: bool) -> None:
    """Give back the stream's concurrency slot; ``soon``: from a finaliser, so without taking a lock."""
    lease, state.lease = state.lease, None
    if lease is not None:
        if soon:
            lease.release_soon()
        else:
            lease.release()
