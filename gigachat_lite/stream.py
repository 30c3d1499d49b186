"""``ChatStream``: a streamed reply, read from the socket and parsed as it arrives.

The stream owns its response: however iteration stops (exhaustion, ``break``,
an error, :meth:`ChatStream.close`), the connection is released, back to the
pool when the body was read to its end, closed otherwise. The body is read
with ``read1`` (whatever has arrived, so a stream sent without chunked
encoding never waits for a full buffer), rejoined into events by :mod:`._sse`
and read by the contract's parser (:mod:`._chat.reply`). Read failures become
our exceptions through :func:`errors.stream_failure`.

Which ``read1``: a GigaChat stream sends one event per HTTP chunk, so the
read is made once per event. urllib3's ``read1`` costs as much per call as
everything else the client does for an event (its error-catching context
manager, length and decoder bookkeeping: 2.4x the floor's CPU per event
against 1.3x, docs/performance.rst), and for a body with no
``Content-Encoding`` it only passes http.client's bytes through. So such a
body is read with the ``read1`` of the http.client response urllib3 wraps
(the one private attribute the package reads, ``HTTPResponse._fp``; where it
is missing, urllib3's own ``read1`` is used), with urllib3's
``enforce_content_length`` check done here; a compressed body (some proxies
gzip event streams) goes through urllib3, which decodes it. The two paths
give the same events and the same errors (tests/test_streaming_body.py).
"""

from __future__ import annotations

import functools
import http.client
import itertools
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, Iterable, Iterator, List, Optional, Type, TypeVar, cast

import requests

from ._chat.reply import ChunkParser, ReasoningChunk, V2ChunkParser
from ._sse import iter_event_data
from .config import DEFAULT_MAX_EVENT_SIZE
from .errors import APIError, StreamError, stream_failure
from .results import ChatResult, Event, ReplyFields, V2Result

if TYPE_CHECKING:
    from ._http.deadline import Deadline
    from .coordination.limiter import Lease

__all__ = ["ChatStream", "ChatStreamV2"]

S = TypeVar("S", bound="ChatStream")

_READ_SIZE = 65536
_DRAIN_LIMIT = 65536  # bytes read after the last event so the connection can be reused; past that, closed


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
    _fields: "_State"

    def __init__(
        self,
        response: requests.Response,
        lease: Optional["Lease"] = None,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        deadline: Optional["Deadline"] = None,
    ) -> None:
        # Neither the reader nor the parser holds this object, only the state
        # below: a dropped stream is freed by reference counting at once, never
        # later by the cycle collector inside some other call (see __del__).
        # ``lease``: the concurrency slot the stream occupies (coordination), held by the state.
        state = self._fields = _State(response.headers.get("x-request-id"))
        state.lease = lease
        state.deadline = deadline
        self._response = response
        self._parts: List[str] = []
        self._chunks: Generator[str, None, None] = _read(response, state, self._parts, self._parser_class(state), max_event_size)

    @classmethod
    def from_chunks(
        cls: Type[S],
        chunks: Iterable[bytes],
        *,
        request_id: Optional[str] = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> S:
        """A stream that reads its body from ``chunks`` (any iterable of ``bytes``) instead of a connection.

        Each item is taken as one network read, through the same SSE framing,
        parser, attributes and errors as a stream read from GigaChat: a body
        saved to a file replays exactly (``ChatStream.from_chunks(open(path,
        "rb"))``; :meth:`ChatStreamV2.from_chunks` for the v2 contract), and
        tests cut a body into any reads they like. An exception raised by the
        iterable is a failed read (``OSError`` -> :class:`StreamError`, a
        timeout -> :class:`StreamTimeoutError`); however the stream ends, the
        iterable's ``close()``, if it has one, is called. ``request_id`` is
        what the stream and its errors report.
        """
        return cls(cast(requests.Response, _ChunkBody(chunks, request_id)), max_event_size=max_event_size)

    @property
    def text(self) -> str:
        """Everything received so far, joined."""
        return "".join(self._parts)

    def __iter__(self) -> "ChatStream":
        return self

    def __str__(self) -> str:
        """The whole answer: what has not been read yet is read first (``print(chat("Привет"))`` prints the reply)."""
        for _ in self:
            pass
        return self.text

    def __next__(self) -> str:
        return next(self._chunks)

    def iter_events(self) -> Iterator[Event]:
        """Yield ``("reasoning", piece)`` and ``("text", piece)`` in the order they arrive."""
        state = self._fields
        state.emit_reasoning = True
        try:
            for piece in self._chunks:
                yield ("reasoning" if piece.__class__ is ReasoningChunk else "text"), str(piece)
        finally:
            state.emit_reasoning = False

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
        state = self._fields
        if not state.ended:  # never started: closing the generator ran no finally
            state.ended = True
            if state.deadline is not None:
                state.deadline.finish()
            _release(self._response, reusable=False)
            _let_go(state, soon=False)

    def abort(self) -> None:
        """Shut the socket down so that a read blocked in another thread returns now.

        Safe to call from any thread; the reading thread then ends the stream.
        """
        self._fields.aborted = True
        try:
            self._response.raw.shutdown()  # urllib3's way to unblock a read from another thread
        except Exception:  # already released or closed: nothing is blocked on it
            pass

    def __del__(self) -> None:
        # A finaliser may run inside another call that holds urllib3's pool lock
        # (the cycle collector runs wherever it likes); returning the connection
        # would wait on that lock forever. So a stream dropped unfinished only
        # closes its socket, and tells the reader's finally to do no more.
        state = self.__dict__.get("_fields")
        if state is not None and not state.ended:
            state.finalizing = True
            if state.deadline is not None:
                state.deadline.finish()  # lock-free: the watchdog just forgets it
            _close_socket(self._response)
            _let_go(state, soon=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} finish_reason={self.finish_reason!r} request_id={self.request_id!r}>"


class ChatStreamV2(V2Result, ChatStream):
    """A v2 stream: the same iteration and attributes as :class:`ChatStream`, plus :class:`~.results.V2Result`'s."""

    _parser_class = V2ChunkParser

    def __iter__(self) -> "ChatStreamV2":
        return self


class _ChunkBody:
    """What :meth:`ChatStream.from_chunks` reads: the parts of a ``requests.Response`` the reader uses, over an iterable."""

    def __init__(self, chunks: Iterable[bytes], request_id: Optional[str]) -> None:
        self.headers: Dict[str, str] = {} if request_id is None else {"x-request-id": request_id}
        self.raw = self
        self._source = chunks
        self._chunks = iter(chunks)

    def read1(self, amt: int = -1, decode_content: bool = True) -> bytes:
        for chunk in self._chunks:
            if chunk:  # b"" would read as the end of the body
                return bytes(chunk)
        return b""

    def shutdown(self) -> None:
        pass  # no socket: nothing blocks in another thread

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


class _State(ReplyFields):
    """What the parser learns as events arrive (the reply's fields), and how the reader ended."""

    def __init__(self, request_id: Optional[str]) -> None:
        super().__init__(request_id)
        self.emit_reasoning = False  # set by iter_events(): the parser hands out reasoning pieces too
        self.aborted = False  # abort() shut the socket on purpose
        self.finalizing = False  # the stream was dropped unfinished: touch no lock
        self.ended = False
        self.lease: Optional[Lease] = None  # given back however the stream ends
        self.deadline: Optional[Deadline] = None  # the call's overall bound, when there is one


def _read(
    response: requests.Response, state: _State, parts: List[str], parser: ChunkParser, limit: int
) -> Generator[str, None, None]:
    """The chunks of ``response``; records what it learns on ``state`` and keeps the text in ``parts``."""
    raw = response.raw
    at_eof = False
    deadline = state.deadline
    try:
        keep = parts.append
        read1, body = _reader(raw)
        reads: Iterator[bytes] = iter(functools.partial(read1, _READ_SIZE), b"")  # iter(callable, sentinel) runs in C
        if body is not None and body.length:
            # urllib3's enforce_content_length, on the bytes read here, checked before the SSE parser
            # sees the end: it dispatches an event cut at the end, which would read as a malformed one.
            reads = itertools.chain(reads, _whole(body))
        for text in map(parser.feed, iter_event_data(reads, limit)):
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
            at_eof = True
        parser.finish()
        if deadline is not None and deadline.expired and not parser.complete:
            raise deadline.error(events=parser.events, request_id=state.request_id)
        if not parser.complete:
            raise StreamError(
                f"the stream ended after {parser.events} events without [DONE] or a finish reason"
                f" (request id {state.request_id})"
            )
        if not at_eof:
            try:
                at_eof = _drain(read1)
            except Exception:  # the reply is complete; only the connection's reuse is lost
                at_eof = False
    except APIError as exc:
        exc.request_id = exc.request_id or state.request_id
        raise
    except Exception as exc:
        if deadline is not None and deadline.expired:
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


def _whole(body: http.client.HTTPResponse) -> Iterator[bytes]:
    """Nothing, once ``body`` has given all its ``Content-Length``; IncompleteRead when it ended short."""
    if body.length:
        raise http.client.IncompleteRead(b"", body.length)
    return
    yield


def _reader(raw: Any) -> "tuple[Callable[[int], bytes], Optional[http.client.HTTPResponse]]":
    """The body's ``read1`` (see the module docstring), and the http.client response when it is read directly."""
    body = getattr(raw, "_fp", None)
    if type(body) is http.client.HTTPResponse and raw.headers.get("content-encoding", "identity").lower() == "identity":
        return body.read1, body
    return functools.partial(raw.read1, decode_content=True), None


def _drain(read1: Callable[[int], bytes]) -> bool:
    """After the last event: read the end of the body so the connection can be reused."""
    left = _DRAIN_LIMIT
    while left > 0:
        data = read1(left)
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
