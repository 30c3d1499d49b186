"""The SSE framing gives exactly what sseclient-py gives, for any bytes cut into any reads (v1 and v2 framing).

The stream parses the common ``data: {json}\\n\\n`` framing itself and hands
the rest of the body to sseclient-py at the first event that looks different.
These properties read a body cut into reads through the public stream
(:meth:`ChatStream.from_chunks`, each item one network read) and compare it
with the same stream fed what sseclient-py makes of the very same reads, one
plain event per read: the same chunks, fields and error (type and message,
which quotes a malformed event's data and counts the events), for both
contracts' parsers. Where the common framing alone suffices, sseclient-py must
not be needed at all (a spy on its constructor).
"""

from __future__ import annotations

import json
from typing import Any, Iterator, List, Optional, Tuple, Type
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sseclient import SSEClient

from gigachat_lite import ChatStream, ChatStreamV2

BOM = b"\xef\xbb\xbf"
Outcome = Tuple[Any, ...]


def outcome(stream: ChatStream) -> Outcome:
    """Everything the stream tells: its chunks, fields and the error it ended with (type and message)."""
    chunks: List[str] = []
    error: Optional[Tuple[type, str]] = None
    try:
        for chunk in stream:
            chunks.append(chunk)
    except Exception as exc:  # compared with the reference's, type and message
        error = (type(exc), str(exc))
    return chunks, error, stream.finish_reason, stream.usage, stream.model, stream.function_call


def sseclient_events(reads: List[bytes]) -> Iterator[bytes]:
    """sseclient-py's events over ``reads``, each as one plain ``data:`` event; its exception raised after them."""
    if b"".join(reads).startswith(BOM):  # the SSE standard drops it (sseclient-py would read a field "\ufeffdata")
        reads = list(reads)
        left = len(BOM)
        while left:
            cut = min(left, len(reads[0]))
            reads[0], left = reads[0][cut:], left - cut
            if not reads[0]:
                reads.pop(0)
    for event in SSEClient(iter(reads)).events():
        head = b"event: error\n" if event.event == "error" else b""
        yield head + b"".join(b"data: " + line.encode("utf-8") + b"\n" for line in event.data.split("\n")) + b"\n"


def both(cls: Type[ChatStream], reads: List[bytes]) -> Tuple[Outcome, Outcome]:
    return (outcome(cls.from_chunks(reads, request_id="rid")),
            outcome(cls.from_chunks(sseclient_events(reads), request_id="rid")))


def check(data: bytes, cuts: List[int]) -> None:
    reads = split(data, cuts)
    for cls in (ChatStream, ChatStreamV2):
        got, expected = both(cls, reads)
        assert got == expected, (cls.__name__, reads)


def sseclient_spy() -> Any:
    """Counts the sseclient-py readers built while it is active (``with sseclient_spy() as spy: ... spy.call_count``)."""
    return mock.patch.object(SSEClient, "__init__", autospec=True, side_effect=SSEClient.__init__)


def needs_sseclient(reads: List[bytes], cls: Type[ChatStream] = ChatStream) -> Tuple[Outcome, int]:
    """The stream's outcome over ``reads``, and how many times it had to build an sseclient-py reader."""
    with sseclient_spy() as spy:
        got = outcome(cls.from_chunks(reads, request_id="rid"))
    return got, spy.call_count


def split(data: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


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
                                 b"a:b", b" lead", b"\xff", b"\xd0", b"error"]))
    content = draw(json_text)
    obj = {"model": "GigaChat-3", "messages": [{"role": "assistant", "content": [{"text": content}]}]}
    return b"event: " + name + b"\ndata: " + json.dumps(obj, ensure_ascii=draw(st.booleans())).encode("utf-8")


odd_line = st.sampled_from([
    b": keep-alive", b":", b"data:{}", b"data:  {}", b"data: ", b"data:", b"data", b"id: 7", b"event: message",
    b"retry: 100", b"foo: bar", b"data: [DONE]", b"data: {\"a\": 1}", b"  ", b"data: \xff\xfe", b"data: \xd0",
    b"event: response.message.delta", b"event:x", b"event: \xff", b"event:", b"event: a\rdata: {}",
    "data: \u2028".encode(), b"DATA: x", b"data:\tx", b"data: a\rb", b"data: {}\rdata: {}", b"event: error",
    b"data:  x", b"data:x ", b"data:   ",  # not JSON: the error quotes the data, so its spaces show
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


@pytest.mark.slow
@settings(max_examples=600, deadline=None)
@given(stream(), cuts)
def test_same_events_as_sseclient_on_mixed_framings(data: bytes, points: List[int]) -> None:
    check(data, points)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80), cuts)
def test_same_events_as_sseclient_on_arbitrary_bytes(data: bytes, points: List[int]) -> None:
    check(data, points)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from([b"data: ", b"data:", b"\n", b"\r", b"\r\n", b":", b" ", b"{}", b"x", b"\xff",
                              "é".encode(), "\u2028".encode(), "🙂".encode(), b"id: 1", b"[DONE]",
                              b"event: ", b"event:", b"response.message.delta", b"\n\n", BOM]), max_size=25),
    cuts,
)
def test_same_events_as_sseclient_on_framing_tokens(tokens: List[bytes], points: List[int]) -> None:
    check(b"".join(tokens), points)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(gigachat_event(), min_size=1, max_size=8), st.data())
def test_common_framing_at_every_split_stays_on_the_fast_path(events: List[bytes], data: st.DataObject) -> None:
    body = b"".join(e + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    reads = split(body, data.draw(cuts))
    got, delegated = needs_sseclient(reads)
    assert got == both(ChatStream, reads)[1]
    contents = [json.loads(e[6:])["choices"][0]["delta"]["content"] for e in events]
    assert got[0] == [c for c in contents if c] and got[1] is None  # every text, then a clean end at [DONE]
    assert not delegated  # sseclient-py was not needed


@pytest.mark.slow
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


@pytest.mark.slow
@settings(max_examples=600, deadline=None)
@given(event_per_read(), st.data())
def test_one_event_per_read_matches_sseclient(reads: List[bytes], data: st.DataObject) -> None:
    if data.draw(st.booleans()):  # then some reads cut further, so one-read events follow a pending buffer
        reads = [piece for read in reads for piece in split(read, data.draw(st.lists(st.integers(0, 60), max_size=2)))]
    for cls in (ChatStream, ChatStreamV2):
        got, expected = both(cls, reads)
        assert got == expected, (cls.__name__, reads)


def test_one_event_per_read_stays_on_the_fast_path() -> None:
    """v1 and v2 events each in its own read (UTF-8 text, a UTF-8 event name) never reach sseclient-py."""
    reads = [b'data: {"choices":[{"delta":{"content":"\xd0\x96"},"index":0}]}\n\n',
             b'event: response.message.delta\ndata: {"messages":[]}\n\n',
             "event: имя\ndata: {}\n\n".encode(), b'data: {"choices":[{"delta":{"content":"!"},"index":0}]}\n\n',
             b"data: [DONE]\n\n"]
    got, delegated = needs_sseclient(reads)
    assert got == both(ChatStream, reads)[1]
    assert got[:2] == (["Ж", "!"], None)
    assert not delegated


V2_BODY = (
    b'event: response.message.delta\n'
    b'data: {"model":"GigaChat-3-Ultra:32.3.18.5","created_at":1780321864,"messages":[{"role":"assistant",'
    b'"content":[{"text":"1, 2, 3"}]}]}\n\n'
    b'event: response.message.done\n'
    b'data: {"model":"GigaChat-3-Ultra:32.3.18.5","created_at":1780321864,"finish_reason":"stop","usage":'
    b'{"input_tokens":19,"input_tokens_details":{"prompt_tokens":19,"cached_tokens":0},"output_tokens":8,"total_tokens":27}}\n\n'
)


@pytest.mark.slow
def test_recorded_v2_framing_at_every_split_stays_on_the_fast_path() -> None:
    """The framing recorded in test_primary_chat_stream_simple.yaml, cut at every one and two points."""
    whole = outcome(ChatStreamV2.from_chunks([V2_BODY], request_id="rid"))
    assert whole[:3] == (["1, 2, 3"], None, "stop") and whole[3]["total_tokens"] == 27
    with sseclient_spy() as spy:
        for i in range(len(V2_BODY) + 1):
            for j in range(i, len(V2_BODY) + 1, 7):
                reads = split(V2_BODY, [i, j])
                assert outcome(ChatStreamV2.from_chunks(reads, request_id="rid")) == whole, reads
    assert not spy.call_count  # sseclient-py was never needed


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
    "error event": b'data: {"a": 1}\n\nevent: error\ndata: {"status": 500, "message": "boom"}\n\n',
    "error event, plain text": b'event: error\r\ndata: upstream gone\r\n\r\n',
    "byte-order mark": BOM + b'data: {"choices":[{"delta":{"content":"a"},"index":0}]}\n\ndata: [DONE]\n\n',
    "text then malformed": (b'data: {"choices":[{"delta":{"content":"a"},"index":0}],"model":"m"}\n\n'
                            b'data: {"choices":[{"delta":{"content":"b"},"index":0}]}\r\n\r\ndata: not json\n\n'),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_named_case_at_every_split(name: str) -> None:
    body = CASES[name]
    for i in range(len(body) + 1):
        check(body, [i])
        for j in range(i, len(body) + 1, 3):
            check(body, [i, j])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_named_case_at_every_single_split(name: str) -> None:
    body = CASES[name]
    for i in range(len(body) + 1):
        check(body, [i])


def test_one_byte_reads() -> None:
    for body in CASES.values():
        check(body, list(range(len(body))))


def test_the_reference_tells_the_cases_apart() -> None:
    # The comparison above is only as good as what an outcome shows: the text, the
    # error's message (quoting a malformed event's data, counting the events), the fields.
    texts = outcome(ChatStream.from_chunks([CASES["text then malformed"]], request_id="rid"))
    assert texts[0] == ["a", "b"] and texts[1][1].startswith("malformed event #3 in the stream: 'not json'")
    utf8 = outcome(ChatStream.from_chunks([CASES["invalid utf-8"]], request_id="rid"))
    assert "invalid UTF-8 after 1 events (request id rid)" in utf8[1][1]
    error = outcome(ChatStream.from_chunks([CASES["error event"]], request_id="rid"))
    assert error[1][0].__name__ == "APIError" and "boom" in error[1][1]
    plain = outcome(ChatStreamV2.from_chunks([CASES["error event, plain text"]], request_id="rid"))
    assert plain[1][0].__name__ == "APIError" and "upstream gone" in plain[1][1]
    bom = outcome(ChatStream.from_chunks([CASES["byte-order mark"]], request_id="rid"))
    assert bom[:2] == (["a"], None)


def test_crlf_split_across_reads_is_one_event() -> None:
    reads = [b'data: {"choices":[{"delta":{"content":"a"},"index":0}]}\r', b'\n\r',
             b'\ndata: {"choices":[{"delta":{"content":"b"},"index":0}]}\r\n\r\ndata: [DONE]\r\n\r\n']
    got, expected = both(ChatStream, reads)
    assert got == expected and got[:2] == (["a", "b"], None)


def test_utf8_character_split_across_reads() -> None:
    body = 'data: {"choices":[{"delta":{"content":"🙂Ж"},"index":0}]}\n\ndata: [DONE]\n\n'.encode()
    cut = body.index("🙂".encode()) + 2
    reads = [body[:cut], body[cut:]]
    got, expected = both(ChatStream, reads)
    assert got == expected and got[:2] == (["🙂Ж"], None)


def test_the_same_through_the_async_adapter() -> None:
    import asyncio

    from gigachat_lite import AsyncStream

    body = CASES["text then malformed"]
    reads = split(body, list(range(0, len(body), 5)))

    async def read() -> Outcome:
        chunks: List[str] = []
        stream = AsyncStream(lambda: ChatStream.from_chunks(reads, request_id="rid"))
        error = None
        try:
            async for chunk in stream:
                chunks.append(chunk)
        except Exception as exc:
            error = (type(exc), str(exc))
        return chunks, error, stream.finish_reason, stream.usage, stream.model, stream.function_call

    assert asyncio.run(read()) == both(ChatStream, reads)[1]
