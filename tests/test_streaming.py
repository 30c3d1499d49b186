"""SSE framing: any split of real streams into network reads gives the same chunks.

Split points cover every byte position (so every CRLF and every multi-byte
UTF-8 character is cut somewhere), and each framing variant real servers send.
"""

from __future__ import annotations

import json
from typing import List, Tuple

import pytest
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from gigachat_lite import APIError, StreamError, StreamTimeoutError

from conftest import cassette_body, fixture_text, load_cassette
from fakes import stream_of


def consume(pieces: List[bytes]) -> Tuple[List[str], object]:
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
    stream = stream_of([render([event("a")])[:-14]], error=ProtocolError("Connection broken"))
    assert next(stream) == "a"
    with pytest.raises(StreamError, match="cut"):
        next(stream)
    assert stream._response.closed and not stream._response.raw.released


def test_read_timeout_mid_stream_is_stream_timeout_error() -> None:
    stream = stream_of([render([event("a")])[:-14]], error=ReadTimeoutError(None, "/", "Read timed out."))
    assert next(stream) == "a"
    with pytest.raises(StreamTimeoutError):
        next(stream)


def test_exhausted_stream_returns_its_connection_to_the_pool() -> None:
    stream = stream_of([render(EVENTS)])
    list(stream)
    assert stream._response.raw.released


def test_break_closes_the_response_without_reuse() -> None:
    stream = stream_of([render(EVENTS)])
    for _ in stream:
        break
    stream.close()
    assert stream._response.closed and not stream._response.raw.released


def test_a_dropped_stream_closes_its_socket_without_touching_the_pool() -> None:
    # A finaliser may run inside a call that holds urllib3's pool lock: returning
    # the connection from there would deadlock, so a dropped stream only closes.
    stream = stream_of([render(EVENTS)])
    raw = stream._response.raw
    next(stream)
    del stream  # no reference cycle: freed here, by reference counting
    assert raw.closed and not raw.released


def test_a_stream_read_to_the_end_returns_its_connection_to_the_pool() -> None:
    stream = stream_of([render(EVENTS)])
    raw = stream._response.raw
    assert "".join(stream) == "".join(e["choices"][0]["delta"].get("content", "") for e in EVENTS)
    assert raw.released


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


def test_a_failure_after_done_loses_only_the_connection_not_the_reply() -> None:
    stream = stream_of([render(EVENTS)], error=ReadTimeoutError(None, "/", "Read timed out."))
    assert list(stream) == ["Привет", ", мир — ✓ 🙂"]  # no StreamTimeoutError: [DONE] had arrived
    assert stream.finish_reason == "stop"
    assert stream._response.closed and not stream._response.raw.released
