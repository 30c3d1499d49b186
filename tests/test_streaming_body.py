"""The two ways a stream's body is read give the same result.

A body without ``Content-Encoding`` is read with the ``read1`` of the
http.client response under urllib3 (a kept shortcut, docs/performance.rst);
a compressed one with urllib3's own ``read1``. Served the same events, both
must hand out the same chunks and end the same way, and a ``Content-Length``
body cut short must be a ``StreamError`` on either path (urllib3 checks the
length itself; the direct path must check it too).
"""

from __future__ import annotations

import socket
from typing import List

import pytest

import gigachat_lite
from gigachat_lite import StreamError

from hostile_servers import RawServer, Request, compress, response, sse_events, stream_case

TEXTS = ["Привет", ", ", "мир", "!"]


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
@pytest.mark.parametrize("mangle", ["whole", "truncated"])
def test_plain_and_compressed_bodies_give_the_same_chunks_and_ending(framing: str, mangle: str) -> None:
    cut = len(sse_events(TEXTS)) * 2 // 3
    plain = stream_case(TEXTS, mangle, cut, b"", "identity", framing, [5, 40, 41, 90])
    packed = stream_case(TEXTS, mangle, cut, b"", "gzip", framing, [5, 40, 41, 90])
    assert (plain.kind, plain.received) == (packed.kind, packed.received)
    assert plain.kind == ("complete" if mangle == "whole" else "typed")
    if mangle == "truncated":
        assert isinstance(plain.error, StreamError) and isinstance(packed.error, StreamError)


@pytest.mark.slow
def test_a_content_length_body_cut_anywhere_is_a_stream_error_after_the_whole_events() -> None:
    whole = sse_events(TEXTS)
    ends: List[int] = [i for i in range(len(whole)) if whole[:i].endswith(b"\n\n")]
    for cut in range(0, len(whole), 7):
        outcome = stream_case(TEXTS, "wire cut", cut, b"", "identity", "length", [])
        assert outcome.kind == "typed", (cut, outcome.kind, outcome.received)
        assert isinstance(outcome.error, StreamError), (cut, outcome.error)
        events_before = sum(1 for end in ends if end <= cut)
        assert outcome.received == [t for t in TEXTS][: max(0, min(events_before, len(TEXTS)))], cut


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_complete_reply_whose_body_is_shorter_than_declared_is_a_stream_error(encoding: str) -> None:
    # The finish reason arrives, then the connection closes before the declared length:
    # urllib3 raises IncompleteRead for the compressed body; the direct path must too.
    body = compress(sse_events(TEXTS, done=False), encoding)

    def handler(conn: socket.socket, request: Request) -> None:
        head = response(200, body, {"Content-Type": "text/event-stream", "Content-Encoding": encoding})
        conn.sendall(head.replace(b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body) + 10)))

    with RawServer(handler) as server:
        stream = gigachat_lite.chat("hi", **server.config())
        received: List[str] = []
        with pytest.raises(StreamError, match="cut"):
            received.extend(stream)
    assert received == TEXTS
