"""SSE framing: any split of real streams into network reads gives the same chunks; how a stream lets its connection go.

Split points cover every byte position (so every CRLF and every multi-byte
UTF-8 character is cut somewhere), and each framing variant real servers send,
read through :meth:`ChatStream.from_chunks` (each item one network read). What
happens to the connection (back to the pool, or closed) is seen from a raw
server on 127.0.0.1 that counts the connections it accepts and the ones the
client hangs up.
"""

from __future__ import annotations

import json
import socket
from typing import Iterator, List, Optional, Sequence, Tuple

import pytest
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from gigachat_lite import APIError, ChatStream, Session, StreamError, StreamTimeoutError

from conftest import cassette_body, fixture_text, load_cassette
from hostile_servers import RawServer, Request, response, sse_events
from reliability_support import wait_for


class Body:
    """The reads of a body, then ``error`` if given; records whether the stream closed it."""

    def __init__(self, pieces: Sequence[bytes], error: Optional[BaseException] = None) -> None:
        self.pieces, self.error, self.closed = list(pieces), error, False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


def stream_of(pieces: Sequence[bytes], error: Optional[BaseException] = None) -> ChatStream:
    return ChatStream.from_chunks(Body(pieces, error), request_id="rid-fake")


def consume(pieces: List[bytes]) -> Tuple[List[str], ChatStream]:
    stream = stream_of(pieces)
    return list(stream), stream


def event(content: str, finish: object = None, usage: object = None, role: bool = False) -> dict:
    delta = {"content": content}
    if role:
        delta["role"] = "assistant"
    choice = {"delta": delta, "index": 0, "finish_reason": finish}
    data = {"choices": [choice], "created": 1, "model": "GigaChat", "object": "chat.completion"}
    if usage is not None:
        data["usage"] = usage
    return data


USAGE = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
EVENTS = [event("Привет", role=True), event(", мир — ✓ 🙂"), event("", "stop", USAGE)]


def render(events: list, *, newline: str = "\n", space: str = " ", comment: bool = False, lead: bool = False) -> bytes:
    out = newline if lead else ""
    if comment:
        out += ": keep-alive" + newline + newline
    for item in events:
        out += f"data:{space}{json.dumps(item, ensure_ascii=False)}{newline}{newline}"
    out += f"data:{space}[DONE]{newline}{newline}"
    return out.encode("utf-8")


VARIANTS = {
    "lf": render(EVENTS),
    "crlf": render(EVENTS, newline="\r\n"),
    "cr": render(EVENTS, newline="\r"),
    "no-space": render(EVENTS, space=""),
    "comment+leading-blank": render(EVENTS, comment=True, lead=True),
    "recorded-fixture": fixture_text("chat_completion.stream").encode("utf-8"),
}


def expected_of(body: bytes) -> List[str]:
    chunks, _ = consume([body])
    return chunks


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_two_way_split_gives_the_same_chunks(name: str) -> None:
    body = VARIANTS[name]
    whole, whole_stream = consume([body])
    assert whole and whole_stream.finish_reason == "stop"
    for cut in range(1, len(body)):
        chunks, stream = consume([body[:cut], body[cut:]])
        assert "".join(chunks) == "".join(whole), f"split at byte {cut}"
        assert stream.finish_reason == "stop" and stream.usage == whole_stream.usage


def test_lf_variant_yields_exact_chunks_and_usage() -> None:
    chunks, stream = consume([VARIANTS["lf"]])
    assert chunks == ["Привет", ", мир — ✓ 🙂"]
    assert stream.usage == USAGE and stream.model == "GigaChat"


def test_one_byte_reads_of_the_recorded_real_stream() -> None:
    body = cassette_body(load_cassette("test_stream_simple.yaml")[-1])
    whole = expected_of(body)
    chunks, stream = consume([body[i:i + 1] for i in range(len(body))])
    assert chunks == whole and len(whole) > 3
    assert stream.finish_reason == "stop"


def test_finish_reason_null_on_every_chunk_is_accepted() -> None:
    chunks, stream = consume([render([event("a"), event("b"), event("", "length", USAGE)])])
    assert chunks == ["a", "b"] and stream.finish_reason == "length"


def test_u2028_inside_json_is_not_a_line_break() -> None:
    chunks, _ = consume([render([event("line\u2028sep\u0085x"), event("", "stop")])])
    assert chunks == ["line\u2028sep\u0085x"]


def test_truncated_stream_yields_what_arrived_then_raises() -> None:
    body = render(EVENTS)
    cut = body.index(b"data: {", 10)  # after the first whole event
    stream = stream_of([body[:cut]])
    assert next(stream) == "Привет"
    with pytest.raises(StreamError, match="without \\[DONE\\]"):
        next(stream)


def test_stream_with_finish_reason_but_no_done_is_complete() -> None:
    body = render(EVENTS).replace(b"data: [DONE]\n\n", b"")
    chunks, stream = consume([body])
    assert len(chunks) == 2 and stream.finish_reason == "stop"


def test_malformed_json_raises_stream_error_after_good_chunks() -> None:
    stream = stream_of([render([event("ok")])[: -len("data: [DONE]\n\n")] + b"data: {not json\n\n"])
    assert next(stream) == "ok"
    with pytest.raises(StreamError, match="malformed"):
        next(stream)


def test_in_stream_error_object_raises_api_error_with_request_id() -> None:
    stream = stream_of([b'data: {"status": 429, "message": "too many"}\n\n'])
    with pytest.raises(APIError) as info:
        next(stream)
    assert info.value.status_code == 429 and info.value.request_id == "rid-fake"


def test_connection_cut_mid_stream_is_stream_error_and_closes() -> None:
    body = Body([render([event("a")])[:-14]], error=ProtocolError("Connection broken"))
    stream = ChatStream.from_chunks(body)
    assert next(stream) == "a"
    with pytest.raises(StreamError, match="cut"):
        next(stream)
    assert body.closed


def test_read_timeout_mid_stream_is_stream_timeout_error() -> None:
    stream = stream_of([render([event("a")])[:-14]], error=ReadTimeoutError(None, "/", "Read timed out."))
    assert next(stream) == "a"
    with pytest.raises(StreamTimeoutError):
        next(stream)


def test_every_way_a_stream_ends_closes_its_body() -> None:
    def in_a_with_block(stream: ChatStream) -> None:
        with stream as s:
            next(s)

    ends = {
        "exhausted": list,
        "break then close": lambda s: (next(s), s.close()),
        "with block": in_a_with_block,
        "closed before reading": lambda s: s.close(),
        "an error": lambda s: pytest.raises(APIError, list, s),
    }
    for name, end in ends.items():
        body = Body([render(EVENTS)] if name != "an error" else [b'data: {"status": 500, "message": "x"}\n\n'])
        end(ChatStream.from_chunks(body))
        assert body.closed, name
    body = Body([render(EVENTS)])
    stream = ChatStream.from_chunks(body)
    next(stream)
    del stream  # no reference cycle: freed here, by reference counting
    assert body.closed


# -- the connection: back to the pool when read to the end, closed otherwise -----------------------

def keep_alive(body: bytes) -> RawServer:
    """A server that answers every request with ``body`` as an SSE reply and keeps the connection."""
    def handler(conn: socket.socket, request: Request) -> bool:
        conn.sendall(response(200, body, {"Content-Type": "text/event-stream"}))
        return True

    return RawServer(handler)


LONG = sse_events([f"piece {i} " for i in range(200)])  # more than one read: a stream left early has bytes unread


def test_a_stream_read_to_the_end_returns_its_connection_to_the_pool() -> None:
    with keep_alive(LONG) as server, Session(**server.config()) as s:
        for _ in range(3):
            stream = s.chat("hi")
            assert "".join(stream).startswith("piece 0 piece 1") and stream.finish_reason == "stop"
        assert server.accepted == 1 and len(server.requests) == 3 and server.hangups == 0


def test_break_closes_the_connection_without_reuse() -> None:
    with keep_alive(LONG) as server, Session(**server.config()) as s:
        stream = s.chat("hi")
        for _ in stream:
            break
        stream.close()
        assert wait_for(lambda: server.hangups == 1)  # closed, not put back half-read
        assert "".join(s.chat("again")).startswith("piece 0")
        assert server.accepted == 2


def test_a_dropped_stream_closes_its_socket_and_the_next_call_takes_a_new_one() -> None:
    # A finaliser may run inside a call that holds urllib3's pool lock: returning
    # the connection from there would deadlock, so a dropped stream only closes
    # (test_hostile.py drops thousands inside the pool's lock).
    with keep_alive(LONG) as server, Session(**server.config()) as s:
        stream = s.chat("hi")
        next(stream)
        del stream  # no reference cycle: freed here, by reference counting
        assert wait_for(lambda: server.hangups == 1)
        assert "".join(s.chat("again")).startswith("piece 0")
        assert server.accepted == 2


def test_a_stream_cut_by_the_server_is_a_stream_error_and_the_next_call_reconnects() -> None:
    def cut(conn: socket.socket, request: Request) -> bool:
        if len(server.requests) == 1:
            whole = response(200, LONG, {"Content-Type": "text/event-stream"})
            conn.sendall(whole[: len(whole) // 2])
            return False  # and close: the body stops half-way
        conn.sendall(response(200, LONG, {"Content-Type": "text/event-stream"}))
        return True

    with RawServer(cut) as server, Session(**server.config()) as s:
        stream = s.chat("hi")
        with pytest.raises(StreamError, match="cut"):
            "".join(stream)
        assert stream.text.startswith("piece 0")
        assert "".join(s.chat("again")).startswith("piece 0")
        assert server.accepted == 2


def test_a_failure_after_done_loses_only_the_connection_not_the_reply() -> None:
    # [DONE], then bytes that break the chunked framing: the reply is whole, the
    # connection cannot be reused, and the next call opens another.
    def broken_tail(conn: socket.socket, request: Request) -> bool:
        head = response(200, b"", {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}, length=False)
        body = sse_events(["Привет", ", мир"])
        conn.sendall(head.replace(b"Connection: close\r\n", b"") + b"%x\r\n%s\r\n" % (len(body), body) + b"zz\r\n")
        return True

    with RawServer(broken_tail) as server, Session(**server.config()) as s:
        for _ in range(2):
            stream = s.chat("hi")
            assert list(stream) == ["Привет", ", мир"]  # no StreamError: [DONE] had arrived
            assert stream.finish_reason == "stop"
        assert server.accepted == 2


def test_a_failure_after_done_keeps_the_reply_whatever_the_error() -> None:
    body = Body([render(EVENTS)], error=ReadTimeoutError(None, "/", "Read timed out."))
    stream = ChatStream.from_chunks(body)
    assert list(stream) == ["Привет", ", мир — ✓ 🙂"]  # no StreamTimeoutError: [DONE] had arrived
    assert stream.finish_reason == "stop" and body.closed


def test_function_call_in_a_delta_is_recorded() -> None:
    call = {"name": "fc", "arguments": {"location": "Москва", "num_days": 0}}
    item = {"choices": [{"delta": {"content": "", "role": "assistant", "function_call": call, "functions_state_id": "fs-1"},
                         "index": 0, "finish_reason": "function_call"}], "created": 1, "model": "GigaChat"}
    chunks, stream = consume([render([item])])
    assert chunks == [] and stream.finish_reason == "function_call"
    assert stream.function_call == call and stream.functions_state_id == "fs-1"


def test_function_call_arguments_sent_as_json_fragments_are_joined() -> None:
    def piece(fc: dict, finish: object = None) -> dict:
        return {"choices": [{"delta": {"function_call": fc}, "index": 0, "finish_reason": finish}]}

    events = [piece({"name": "weather", "arguments": '{"city": "Мос'}), piece({"arguments": 'ква", "days": 2}'}),
              piece({}, "function_call")]
    chunks, stream = consume([render(events)])
    assert chunks == [] and stream.finish_reason == "function_call"
    assert stream.function_call == {"name": "weather", "arguments": {"city": "Москва", "days": 2}}
