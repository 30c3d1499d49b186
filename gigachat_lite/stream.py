"""``ChatStream``: a streamed reply, read straight from the socket and parsed as it arrives.

The stream owns its response: however iteration stops (exhaustion, ``break``,
an error, :meth:`ChatStream.close`), the connection is released or closed.
Read failures become our exceptions through :func:`errors.stream_failure`.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, Dict, Generator, List, Optional, Type

import requests

from .deadline import Deadline
from .body import check_length, close_socket, drain, read_chunks, release
from .errors import APIError, StreamError, stream_failure
from .reply_v2 import V2Result, reset_v2_fields
from .results import ChatResult
from .settings_checks import DEFAULT_MAX_EVENT_SIZE
from .sse import iter_event_data
from .stream_v1 import ChunkParser
from .stream_v2 import V2ChunkParser
from .wire import socket_buffer
from .wire import texts as wire_texts

if TYPE_CHECKING:
    from .coordination.limiter import Lease

__all__ = ["ChatStream", "ChatStreamV2"]

class ChatStream(ChatResult):
    """The text of a streamed reply, chunk by chunk.

    Iterate it for non-empty ``str`` chunks as they arrive; ``finish_reason``,
    ``usage``, ``model`` and ``function_call`` fill in as their events arrive.
    However iteration stops (exhaustion, ``break``, an error, :meth:`close`,
    ``with``), the connection is released: back to the pool when read to the end.

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
            release(self._response, reusable=False)
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
            close_socket(self._response)
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
        keep = parts.append
        buffer = socket_buffer(response.raw)
        if buffer is not None:
            texts = wire_texts(response.raw, buffer, parser, limit)
        else:
            texts = map(parser.feed, iter_event_data(read_chunks(response.raw), limit))
        for text in texts:
            if deadline is not None:
                deadline.got_first_byte()
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
            check_length(response.raw)
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
                at_eof = drain(response.raw)
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
            close_socket(response)
        else:
            release(response, reusable=at_eof)
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


def _let_go(state: _State, *, soon: bool) -> None:
    """Give back the stream's concurrency slot; ``soon``: from a finaliser, so without taking a lock."""
    lease, state.lease = state.lease, None
    if lease is not None:
        if soon:
            lease.release_soon()
        else:
            lease.release()
