"""The SSE fast path gives exactly what sseclient-py gives, for any bytes cut into any reads (v1 and v2 framing).

``iter_event_data`` parses the common ``data: {json}\\n\\n`` framing itself and
hands the rest of the stream to sseclient-py at the first event that looks
different. These properties compare it with sseclient-py fed the very same
reads: the same data sequence, and the same exception type (after the same
events) where sseclient-py raises.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, List, Optional, Tuple, Type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sseclient import SSEClient

from gigachat_lite import _sse as sse
from gigachat_lite._sse import iter_event_data

Outcome = Tuple[List[str], Optional[Type[BaseException]]]


def _run(events: Iterable[str]) -> Outcome:
    out: List[str] = []
    try:
        for data in events:
            out.append(data)
    except Exception as exc:  # compared by type: the messages are sseclient-py's own
        return out, type(exc)
    return out, None


def reference(reads: List[bytes]) -> Outcome:
    return _run(event.data for event in SSEClient(iter(reads)).events())


def fast(reads: List[bytes]) -> Outcome:
    return _run(iter_event_data(iter(reads)))


def fast_counting_delegations(reads: List[bytes]) -> Tuple[Outcome, List[Any]]:
    """``fast(reads)``, and every hand-over to sseclient-py it made (a spy on ``sse._delegate``)."""
    calls: List[Any] = []
    original = sse._delegate

    def spy(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    sse._delegate = spy
    try:
        return fast(reads), calls
    finally:
        sse._delegate = original


def split(data: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def check(data: bytes, cuts: List[int]) -> None:
    reads = split(data, cuts)
    assert fast(reads) == reference(reads), reads


# -- building blocks -------------------------------------------------------------------

json_text = st.text(
    alphabet=st.sampled_from(list("ab xyz{}:\"\\,.") + ["\u2028", "\u2029", "\x85", "\x0b", "\x1c", "é", "Ж", "—", "🙂", "\r", "\n"]),
    max_size=12,
)


@st.composite
def gigachat_event(draw: st.DrawFn) -> bytes:
    """``data: {json}`` as GigaChat sends it (JSON escapes any CR/LF in the text)."""
    content = draw(json_text)
    obj = {"choices": [{"delta": {"content": content}, "index": 0}], "model": "GigaChat"}
    return b"data: " + json.dumps(obj, ensure_ascii=draw(st.booleans())).encode("utf-8")


@st.composite
def gigachat_v2_event(draw: st.DrawFn) -> bytes:
    """``event: name\ndata: {json}`` as GigaChat's v2 sends it (and names it might send)."""
    name = draw(st.sampled_from([b"response.message.delta", b"response.message.done", b"x", b"", "имя".encode(),
                                 b"a:b", b" lead", b"\xff", b"\xd0"]))
    content = draw(json_text)
    obj = {"model": "GigaChat-3", "messages": [{"role": "assistant", "content": [{"text": content}]}]}
    return b"event: " + name + b"\ndata: " + json.dumps(obj, ensure_ascii=draw(st.booleans())).encode("utf-8")


odd_line = st.sampled_from([
    b": keep-alive", b":", b"data:{}", b"data:  {}", b"data: ", b"data:", b"data", b"id: 7", b"event: message",
    b"retry: 100", b"foo: bar", b"data: [DONE]", b"data: {\"a\": 1}", b"  ", b"data: \xff\xfe", b"data: \xd0",
    b"event: response.message.delta", b"event:x", b"event: \xff", b"event:", b"event: a\rdata: {}",
    "data: \u2028".encode(), b"DATA: x", b"data:\tx", b"data: a\rb", b"data: {}\rdata: {}",
])
line = st.one_of(gigachat_event(), gigachat_event(), gigachat_v2_event(), odd_line)
newline = st.sampled_from([b"\n", b"\n", b"\n", b"\r\n", b"\r"])


@st.composite
def stream(draw: st.DrawFn) -> bytes:
    """Events of one or more lines, mostly well-formed, separated by blank lines of any style."""
    out = b""
    for _ in range(draw(st.integers(0, 6))):
        nl = draw(newline)
        lines = draw(st.lists(line, min_size=1, max_size=3))
        if draw(st.integers(0, 3)):  # usually one consistent line ending per event
            out += b"".join(item + nl for item in lines) + nl
        else:
            out += b"".join(item + draw(newline) for item in lines) + draw(newline)
    if draw(st.booleans()):
        out = out[: draw(st.integers(0, len(out)))]  # truncated input
    return out


cuts = st.lists(st.integers(0, 400), max_size=12)


# -- properties --------------------------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(stream(), cuts)
def test_same_events_as_sseclient_on_mixed_framings(data: bytes, points: List[int]) -> None:
    check(data, points)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80), cuts)
def test_same_events_as_sseclient_on_arbitrary_bytes(data: bytes, points: List[int]) -> None:
    check(data, points)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from([b"data: ", b"data:", b"\n", b"\r", b"\r\n", b":", b" ", b"{}", b"x", b"\xff",
                              "é".encode(), "\u2028".encode(), "🙂".encode(), b"id: 1", b"[DONE]",
                              b"event: ", b"event:", b"response.message.delta", b"\n\n"]), max_size=25),
    cuts,
)
def test_same_events_as_sseclient_on_framing_tokens(tokens: List[bytes], points: List[int]) -> None:
    check(b"".join(tokens), points)


@settings(max_examples=200, deadline=None)
@given(st.lists(gigachat_event(), min_size=1, max_size=8), st.data())
def test_common_framing_at_every_split_stays_on_the_fast_path(events: List[bytes], data: st.DataObject) -> None:
    body = b"".join(e + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    reads = split(body, data.draw(cuts))
    got, calls = fast_counting_delegations(reads)
    assert got == reference(reads)
    assert got[0][-1] == "[DONE]" and len(got[0]) == len(events) + 1
    assert not calls  # sseclient-py was not needed


@settings(max_examples=200, deadline=None)
@given(st.lists(gigachat_v2_event(), min_size=1, max_size=8), st.data())
def test_v2_named_events_at_every_split_match_sseclient(events: List[bytes], data: st.DataObject) -> None:
    check(b"".join(e + b"\n\n" for e in events), data.draw(cuts))


@st.composite
def event_per_read(draw: st.DrawFn) -> List[bytes]:
    """Whole events, one per read, as a chunked stream delivers them (the one-read fast path)."""
    reads = []
    for _ in range(draw(st.integers(1, 6))):
        nl = draw(newline)
        lines = draw(st.lists(line, min_size=1, max_size=2))
        reads.append(b"".join(item + nl for item in lines) + nl)
    return reads


@settings(max_examples=600, deadline=None)
@given(event_per_read(), st.data())
def test_one_event_per_read_matches_sseclient(reads: List[bytes], data: st.DataObject) -> None:
    if data.draw(st.booleans()):  # then some reads cut further, so one-read events follow a pending buffer
        reads = [piece for read in reads for piece in split(read, data.draw(st.lists(st.integers(0, 60), max_size=2)))]
    assert fast(reads) == reference(reads), reads


def test_one_event_per_read_stays_on_the_fast_path() -> None:
    """v1 and v2 events each in its own read (UTF-8 text, a UTF-8 event name) never reach sseclient-py."""
    reads = [b'data: {"choices":[{"delta":{"content":"\xd0\x96"},"index":0}]}\n\n',
             b'event: response.message.delta\ndata: {"messages":[]}\n\n',
             "event: имя\ndata: {}\n\n".encode(), b"data: \n\n", b"data: [DONE]\n\n"]
    got, calls = fast_counting_delegations(reads)
    assert got == reference(reads) and len(got[0]) == 5
    assert not calls


V2_BODY = (
    b'event: response.message.delta\n'
    b'data: {"model":"GigaChat-3-Ultra:32.3.18.5","created_at":1780321864,"messages":[{"role":"assistant",'
    b'"content":[{"text":"1, 2, 3"}]}]}\n\n'
    b'event: response.message.done\n'
    b'data: {"model":"GigaChat-3-Ultra:32.3.18.5","created_at":1780321864,"finish_reason":"stop","usage":'
    b'{"input_tokens":19,"input_tokens_details":{"prompt_tokens":19,"cached_tokens":0},"output_tokens":8,"total_tokens":27}}\n\n'
)


def test_recorded_v2_framing_at_every_split_stays_on_the_fast_path() -> None:
    """The framing recorded in test_primary_chat_stream_simple.yaml, cut at every one and two points."""
    calls: List[Any] = []
    for i in range(len(V2_BODY) + 1):
        for j in range(i, len(V2_BODY) + 1, 7):
            reads = split(V2_BODY, [i, j])
            got, delegated = fast_counting_delegations(reads)
            calls += delegated
            assert got == reference(reads) and len(got[0]) == 2, reads
    assert not calls  # sseclient-py was never needed


# -- the cases named in the design, each at every split point ---------------------------------

CASES = {
    "crlf": b'data: {"a": 1}\r\n\r\ndata: {"b": 2}\r\n\r\n',
    "cr only": b'data: {"a": 1}\r\rdata: {"b": 2}\r\r',
    "lf then crlf": b'data: {"a": 1}\n\ndata: {"b": 2}\r\n\r\ndata: {"c": 3}\n\n',
    "comment": b': ping\n\ndata: {"a": 1}\n\n: ping\ndata: {"b": 2}\n\n',
    "multi-line data": b'data: {"a":\ndata: 1}\n\ndata: {"b": 2}\n\n',
    "no space": b'data:{"a": 1}\n\ndata: {"b": 2}\n\n',
    "other fields": b'id: 1\nevent: x\ndata: {"a": 1}\nretry: 5\n\ndata: {"b": 2}\n\n',
    "utf-8": 'data: {"t": "Привет, мир — ✓ 🙂"}\n\ndata: {"t": "Ж"}\n\n'.encode(),
    "u+2028": 'data: {"t": "a\u2028b\u2029c\x85d"}\n\ndata: {"t": "\u2028"}\n\n'.encode(),
    "invalid utf-8": b'data: {"a": 1}\n\ndata: {"t": "\xff"}\n\ndata: {"b": 2}\n\n',
    "truncated": b'data: {"a": 1}\n\ndata: {"b": 2}\n',
    "truncated mid-line": b'data: {"a": 1}\n\ndata: {"b"',
    "extra blank lines": b'data: {"a": 1}\n\n\n\ndata: {"b": 2}\n\n\n',
    "empty data": b'data: \n\ndata: {"b": 2}\n\n',
    "leading blank": b'\n\ndata: {"a": 1}\n\n',
    "done": b'data: {"a": 1}\n\ndata: [DONE]\n\n',
    "v2 named events": b'event: response.message.delta\ndata: {"a": 1}\n\nevent: response.message.done\ndata: {"b": 2}\n\n',
    "v2 crlf": b'event: d\r\ndata: {"a": 1}\r\n\r\nevent: d\r\ndata: {"b": 2}\r\n\r\n',
    "v2 name without data": b'event: d\n\nevent: d\ndata: {"a": 1}\n\n',
    "v2 name then two data lines": b'event: d\ndata: {"a":\ndata: 1}\n\nevent: d\ndata: {"b": 2}\n\n',
    "v2 bad utf-8 name": b'event: d\ndata: {"a": 1}\n\nevent: \xff\ndata: {"b": 2}\n\n',
    "v2 utf-8 name": 'event: имя\ndata: {"a": 1}\n\n'.encode(),
    "v2 id after name": b'event: d\nid: 1\ndata: {"a": 1}\n\nevent: d\ndata: {"b": 2}\n\n',
    "v2 truncated": b'event: d\ndata: {"a": 1}\n\nevent: d\ndata: {"b"',
    "v2 truncated after name": b'event: d\ndata: {"a": 1}\n\nevent: d\n',
    "v2 mixed with v1": b'data: {"a": 1}\n\nevent: d\ndata: {"b": 2}\n\ndata: {"c": 3}\n\n',
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_named_case_at_every_split(name: str) -> None:
    body = CASES[name]
    for i in range(len(body) + 1):
        check(body, [i])
        for j in range(i, len(body) + 1, 3):
            check(body, [i, j])


def test_one_byte_reads() -> None:
    for body in CASES.values():
        check(body, list(range(len(body))))


def test_crlf_split_across_reads_is_one_event() -> None:
    reads = [b'data: {"a": 1}\r', b'\n\r', b'\ndata: {"b": 2}\r\n\r\n']
    assert fast(reads) == reference(reads) == (['{"a": 1}', '{"b": 2}'], None)


def test_utf8_character_split_across_reads() -> None:
    body = 'data: {"t": "🙂Ж"}\n\n'.encode()
    cut = body.index("🙂".encode()) + 2
    reads = [body[:cut], body[cut:]]
    assert fast(reads) == reference(reads) == (['{"t": "🙂Ж"}'], None)
