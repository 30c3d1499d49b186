"""Properties of the public stream path (``ChatStream.from_chunks``: each item one network read), whatever the SSE parser.

1. Any split of a valid stream into network reads gives the same chunks,
   finish reason and usage as the events that were encoded.
2. Arbitrary bytes give chunks and then either a clean end, ``StreamError``, or
   ``APIError`` (an error object inside the stream is the server speaking, so it
   keeps its status like any other API error); never another exception, never a hang.
"""

from __future__ import annotations

import json
import signal
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gigachat_lite import APIError, ChatStream, StreamError

stream_of = ChatStream.from_chunks

SETTINGS = settings(max_examples=200)


@contextmanager
def hang_guard(seconds: int = 10) -> Iterator[None]:
    """SIGALRM in the main thread: a parser loop that never ends fails the example."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"parsing did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- 1. valid streams -----------------------------------------------------------------

USAGE = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


@st.composite
def valid_streams(draw: Any) -> Tuple[bytes, List[str], Optional[str], Optional[Dict[str, int]]]:
    contents = draw(st.lists(st.text(max_size=12), min_size=0, max_size=8))
    eol = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    ending = draw(st.sampled_from(["finish+done", "finish", "done"]))
    finish = draw(st.sampled_from(["stop", "length", "blacklist"])) if ending != "done" else None
    ascii_only = draw(st.booleans())
    chunks: List[Dict[str, Any]] = [
        {"choices": [{"delta": {"content": c, "role": "assistant"}, "index": 0, "finish_reason": None}],
         "created": 1, "model": "GigaChat:emulator", "object": "chat.completion"}
        for c in contents
    ]
    last: Dict[str, Any] = {"choices": [{"delta": {"content": ""}, "index": 0, "finish_reason": finish}],
                            "created": 1, "model": "GigaChat:emulator", "object": "chat.completion", "usage": USAGE}
    chunks.append(last)
    datas = [json.dumps(c, ensure_ascii=ascii_only) for c in chunks]
    if ending != "finish":
        datas.append("[DONE]")
    out = []
    for data in datas:
        if draw(st.booleans()):
            out.append(": keep-alive" + eol + (eol if draw(st.booleans()) else ""))  # a comment, alone or inside
        space = " " if draw(st.booleans()) else ""
        out.append(f"data:{space}{data}{eol}{eol}")
    raw = "".join(out).encode("utf-8")
    return raw, [c for c in contents if c], finish, USAGE


def _split(raw: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    return [raw[a:b] for a, b in zip(points, points[1:])]


@pytest.mark.slow
@SETTINGS
@given(valid_streams(), st.lists(st.integers(min_value=0), max_size=40))
def test_any_split_of_a_valid_stream_gives_the_same_result(stream: Any, cuts: List[int]) -> None:
    raw, expected, finish, usage = stream
    pieces = _split(raw, cuts)
    assert b"".join(pieces) == raw
    with hang_guard():
        s = stream_of(pieces)
        got = list(s)
    assert got == expected
    assert s.finish_reason == finish
    assert s.usage == usage
    assert s.text == "".join(expected)


@pytest.mark.slow
@SETTINGS
@given(valid_streams())
def test_byte_at_a_time_equals_one_read(stream: Any) -> None:
    raw, expected, _, _ = stream
    with hang_guard():
        whole = list(stream_of([raw]))
        single = list(stream_of([raw[i:i + 1] for i in range(len(raw))]))
    assert whole == single == expected


# -- 2. arbitrary bytes -----------------------------------------------------------------

FRAGMENTS = [
    b"data:", b"data: ", b"\n", b"\r\n", b"\r", b": comment\n", b"event: x\n", b"[DONE]",
    b'{"choices":[{"delta":{"content":"a"},"index":0}]}',
    b'{"choices":[{"delta":{"content":"b"},"index":0,"finish_reason":"stop"}]}',
    b'{"status":500,"message":"boom"}', b'{"choices":5}', b"[1,2]", b"null", b"{", b"}", b'"', b"\\u",
    b"\xd0\x9f", b"\xe2\x80\xa8",
]
fuzz_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=4)), max_size=40).map(b"".join),
)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _consume(pieces: List[bytes]) -> Tuple[List[str], Optional[BaseException]]:
    got: List[str] = []
    with hang_guard():
        try:
            for chunk in stream_of(pieces):
                assert isinstance(chunk, str) and chunk
                got.append(chunk)
        except (StreamError, APIError) as exc:
            return got, exc
    return got, None


@pytest.mark.slow
@SETTINGS
@given(fuzz_bytes.filter(_utf8), st.lists(st.integers(min_value=0), max_size=10))
def test_arbitrary_utf8_bytes_give_chunks_or_a_typed_error(raw: bytes, cuts: List[int]) -> None:
    got, error = _consume(_split(raw, cuts))
    if error is None:  # a clean end needs [DONE] or a finish reason somewhere
        assert b"[DONE]" in raw or b"finish_reason" in raw


def test_invalid_utf8_in_a_stream_is_a_stream_error() -> None:
    got, error = _consume([b'data: {"choices":[{"delta":{"content":"a"},"index":0}]}\n\n', b"data: \xff\xfe\n\n"])
    assert got == ["a"] and isinstance(error, StreamError)


@pytest.mark.slow
@SETTINGS
@given(fuzz_bytes, st.lists(st.integers(min_value=0), max_size=10))
def test_arbitrary_bytes_never_raise_anything_but_typed_errors(raw: bytes, cuts: List[int]) -> None:
    got, error = _consume(_split(raw, cuts))  # anything but StreamError/APIError escapes and fails here
    if error is None:
        assert b"[DONE]" in raw or b"finish_reason" in raw
