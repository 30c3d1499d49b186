"""The one-pass reader (``gigachat_lite/wire.py``) gives exactly what the usual path gives.

The usual path is http.client's chunk reader, then :func:`sse.iter_event_data`,
then the parser's ``feed``. Both run here over a real ``http.client.HTTPResponse``
whose socket hands out the given bytes one piece per ``recv`` (as TLS records or
TCP segments arrive), with a small or the default read buffer: the same chunks,
the same state (finish reason, usage, model, events counted), the same exception
type after the same chunks, and the connection reusable in the same cases.
"""

from __future__ import annotations

import http.client
import io
import json
from typing import Any, Dict, List, Optional, Tuple

from unittest import mock

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gigachat_lite import stream as stream_module
from gigachat_lite import wire
from gigachat_lite.stream_v1 import ChunkParser
from gigachat_lite.stream import ChatStream, ChatStreamV2
from gigachat_lite.stream_v2 import V2ChunkParser

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


class _Records(io.RawIOBase):
    """A socket's reads: one piece per call, then EOF."""

    def __init__(self, pieces: List[bytes]) -> None:
        self.pieces = [p for p in pieces if p]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.pieces:
            return 0
        piece = self.pieces[0]
        n = min(len(piece), len(buffer))
        buffer[:n] = piece[:n]
        if n < len(piece):
            self.pieces[0] = piece[n:]
        else:
            self.pieces.pop(0)
        return n


class _Socket:
    def __init__(self, pieces: List[bytes], buffer_size: int) -> None:
        self.pieces, self.buffer_size = pieces, buffer_size

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_Records(self.pieces), self.buffer_size)


class _Raw:
    """What ChatStream needs of urllib3's response: http.client's response under ``_fp``."""

    def __init__(self, fp: http.client.HTTPResponse) -> None:
        self._fp, self._decoder, self._decoded_buffer = fp, None, b""
        self.headers = {"content-type": "text/event-stream"}
        self.reused: Optional[bool] = None

    def release_conn(self) -> None:
        self.reused = True

    def close(self) -> None:
        if self.reused is None:
            self.reused = False


def _response(body: bytes, cuts: List[int], buffer_size: int) -> requests.Response:
    data = HEAD + body
    points = sorted({len(HEAD)} | {len(HEAD) + c % (len(body) + 1) for c in cuts} | {len(data)})
    pieces = [data[:len(HEAD)]] + [data[a:b] for a, b in zip(points, points[1:])]
    fp = http.client.HTTPResponse(_Socket(pieces, buffer_size))  # type: ignore[arg-type]
    fp.begin()
    response = requests.Response()
    response.status_code = 200
    response.raw = _Raw(fp)
    response.headers = requests.structures.CaseInsensitiveDict({"x-request-id": "rid"})
    return response


Outcome = Tuple[List[Any], Optional[str], Dict[str, Any], Optional[bool]]


def _run(
    body: bytes, cuts: List[int], buffer_size: int, v2: bool, one_pass: bool, limit: int = 64
) -> Outcome:
    response = _response(body, cuts, buffer_size)
    # one_pass=False: the usual path (no socket buffer found); True: counted, to show the reader ran.
    with mock.patch.object(stream_module, "socket_buffer", _spy_socket_buffer if one_pass else (lambda raw: None)):
        stream = (ChatStreamV2 if v2 else ChatStream)(response, max_event_size=limit)
        out: List[Any] = []
        error = None
        try:
            for chunk in stream:
                out.append(chunk)
        except Exception as exc:
            error = type(exc).__name__
    state = {name: getattr(stream, name) for name in ("finish_reason", "usage", "model", "function_call")}
    return out, error, state, response.raw.reused


USED: List[bool] = []


def _spy_socket_buffer(raw: Any) -> Any:
    found = wire.socket_buffer(raw)
    USED.append(found is not None)
    return found


def _chunked(events: List[bytes], sizes: List[int]) -> bytes:
    """``events`` joined and cut into HTTP chunks of the given sizes (one chunk an event when ``sizes`` is empty)."""
    if not sizes:
        pieces = events
    else:
        joined, pieces, at = b"".join(events), [], 0
        for size in sizes:
            if at >= len(joined):
                break
            pieces.append(joined[at:at + size])
            at += size
        pieces.append(joined[at:])
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


def _v1(text: str, first: bool = False, **extra: Any) -> bytes:
    delta: Dict[str, Any] = {"content": text}
    if first:
        delta["role"] = "assistant"
    choice: Dict[str, Any] = {"delta": delta, "index": 0, **extra}
    event = {"choices": [choice], "created": 1, "model": "GigaChat", "object": "chat.completion"}
    return b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"


def _v2(text: str) -> bytes:
    event = {"model": "GigaChat-3", "created_at": 1, "messages": [{"role": "assistant", "content": [{"text": text}]}]}
    return b"event: response.message.delta\ndata: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"


V1_END = [
    b'data: {"choices":[{"delta":{"content":""},"index":0,"finish_reason":"stop"}],"created":1,"model":"GigaChat",'
    b'"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n',
    b"data: [DONE]\n\n",
]
V2_END = [
    b'event: response.message.done\ndata: {"model":"GigaChat-3","created_at":1,"finish_reason":"stop",'
    b'"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}}\n\n'
]

texts = st.text(alphabet=st.sampled_from(list("ab \n\r\"\\{}") + ["Ж", "🙂", "\u2028"]), max_size=10)


@st.composite
def streams(draw: st.DrawFn) -> Tuple[bytes, bool]:
    """A GigaChat stream, v1 or v2, with odd events mixed in, cut into chunks one way or another."""
    v2 = draw(st.booleans())
    contents = draw(st.lists(texts, max_size=8))
    events = [(_v2 if v2 else _v1)(c) for c in contents]
    if not v2 and events:
        events[0] = _v1(contents[0], first=True)
    odd = [b": keep-alive\n\n", b"data: {}\n\n", b"data: not json\n\n", b"data: [1]\n\n",
           b'data: {"choices":[{"delta":{"content":"c"},"index":0}]}\r\n\r\n', b"data: a\ndata: b\n\n",
           b"event: ping\ndata: {}\n\n", b'data: {"status":500,"message":"boom"}\n\n', b"data: \xff\n\n",
           b'data:  {"x": 1} \n\n', b"id: 1\n\n"]
    for _ in range(draw(st.integers(0, 2))):
        events.insert(draw(st.integers(0, len(events))), draw(st.sampled_from(odd)))
    events += V2_END if v2 else V1_END
    sizes = draw(st.one_of(st.just([]), st.lists(st.integers(1, 40), max_size=12)))
    body = _chunked(events, sizes)
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]  # cut anywhere
    return body, v2


@SETTINGS
@given(streams(), st.lists(st.integers(min_value=0), max_size=30), st.sampled_from([8192, 64, 16]),
       st.sampled_from([65536, 120]))
def test_one_pass_reader_gives_what_the_usual_path_gives(
    stream: Tuple[bytes, bool], cuts: List[int], buffer_size: int, limit: int
) -> None:
    body, v2 = stream
    one_pass = _run(body, cuts, buffer_size, v2, True, limit)
    assert one_pass == _run(body, cuts, buffer_size, v2, False, limit)


framing = st.sampled_from([b"5\r\n", b"5;ext=1\r\n", b"0\r\n", b"\r\n", b"A\n", b"+3\r\n", b"-1\r\n", b"zz\r\n",
                           b"data: x\n\n", b"hello", b"\n", b"\r", b"0\r\nTrailer: x\r\n\r\n", b"1_0\r\n", b" 4 \r\n"])


@SETTINGS
@given(st.lists(st.one_of(framing, st.binary(max_size=12)), max_size=20), st.lists(st.integers(min_value=0), max_size=20),
       st.sampled_from([8192, 16]), st.booleans())
def test_one_pass_reader_on_arbitrary_chunk_framing(tokens: List[bytes], cuts: List[int], buffer_size: int, v2: bool) -> None:
    body = b"".join(tokens)
    assert _run(body, cuts, buffer_size, v2, True) == _run(body, cuts, buffer_size, v2, False)


@pytest.mark.parametrize("v2", [False, True])
def test_a_plain_stream_is_read_in_one_pass_to_the_end_and_reused(v2: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [_v2(c) if v2 else _v1(c, first=(i == 0)) for i, c in enumerate("abc")] + (V2_END if v2 else V1_END)
    body = _chunked(events, [])
    calls: List[int] = []
    parser_class = V2ChunkParser if v2 else ChunkParser
    original = parser_class.feed

    def counting_feed(self: Any, data: str) -> Any:
        calls.append(1)
        return original(self, data)

    USED.clear()
    with monkeypatch.context() as patch:
        patch.setattr(parser_class, "feed", counting_feed)
        out, error, state, reused = _run(body, [], 8192, v2, True, limit=65536)
    assert (out, error, reused) == (["a", "b", "c"], None, True)
    assert state["finish_reason"] == "stop" and state["usage"]["total_tokens"] == 3
    assert USED == [True]
    # Only the first event (it names the model) and the end go through feed(); "b" and "c" do not.
    assert len(calls) == (2 if v2 else 3)


def test_an_event_larger_than_the_buffer_is_read_whole() -> None:
    big = "Ж" * 3000  # 6,000 bytes: more than a 64-byte buffer, within max_event_size
    events = [_v1("a", first=True), _v1(big), _v1("z")] + V1_END
    body = _chunked(events, [])
    result = _run(body, [100, 700, 5000], 64, False, True, limit=65536)
    assert result[0] == ["a", big, "z"] and result[1] is None and result[3] is True
