"""Every recorded v2 interaction (``test_primary_*`` cassettes, real GigaChat-3 traffic) replayed
through the public API with ``responses``: the bytes as recorded, the request we send compared
with the one the official SDK sent, and what the user sees (text, usage, tools, files)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, TypedDict

import pytest
import responses

from gigachat_lite import Session, StructuredOutputError, aio, chat, parse
from gigachat_lite.chat import ChatReplyV2, ChatStreamV2

from conftest import BASE, cassette_body, load_cassette

V2 = BASE.replace("/api/v1", "/api/v2") + "/chat/completions"
TOKEN = "test-access-token"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def api_interactions(cassette: str) -> List[Dict[str, Any]]:
    return [i for i in load_cassette(cassette) if "/oauth" not in i["request"]["uri"]]


def replay(rsps: responses.RequestsMock, cassette: str) -> List[Dict[str, Any]]:
    """Register the cassette's chat replies, in order, at our v2 URL; return the interactions."""
    interactions = api_interactions(cassette)
    for interaction in interactions:
        assert interaction["request"]["uri"].endswith("/api/v2/chat/completions")
        rsps.add(
            responses.POST, V2, body=cassette_body(interaction), status=interaction["response"]["status"]["code"],
            content_type=interaction["response"]["headers"]["Content-Type"][0],
            headers={"x-request-id": interaction["response"]["headers"]["x-request-id"][0]},
        )
    return interactions


def sent(rsps: responses.RequestsMock, i: int = 0) -> Dict[str, Any]:
    body = rsps.calls[i].request.body
    return json.loads(body)  # type: ignore[arg-type]


def recorded_request(interaction: Dict[str, Any]) -> Dict[str, Any]:
    return json.loads(interaction["request"]["body"])  # type: ignore[no-any-return]


def config(**extra: Any) -> Dict[str, Any]:
    return {"access_token": TOKEN, "base_url": BASE, "model": "GigaChat-3-Ultra", **extra}


def test_create_simple(rsps: responses.RequestsMock) -> None:
    recorded = replay(rsps, "test_primary_chat_create_simple.yaml")
    reply = chat("Say 'Hello' and nothing else", stream=False, api_version="v2", **config())
    assert isinstance(reply, ChatReplyV2)
    assert sent(rsps) == recorded_request(recorded[0])
    assert list(reply) == ["Hello"] and reply.text == "Hello" and str(reply) == "Hello"
    assert reply.finish_reason == "stop" and reply.model == "GigaChat-3-Ultra:32.3.18.5"
    assert reply.usage == {"prompt_tokens": 19, "completion_tokens": 2, "total_tokens": 21, "cached_tokens": 0}
    assert reply.usage_raw == json.loads(cassette_body(recorded[0]))["usage"]
    assert reply.request_id == "6793f98b-435a-4a6b-a956-f495c7606f70"
    assert reply.created == 1780321855 and reply.reasoning == ""


@pytest.mark.parametrize("cassette", ["test_primary_chat_stream_simple.yaml", "test_primary_achat_stream_simple.yaml"])
def test_stream_simple(rsps: responses.RequestsMock, cassette: str) -> None:
    recorded = replay(rsps, cassette)
    stream = chat("Count from 1 to 3", api_version="v2", **config())
    assert isinstance(stream, ChatStreamV2)
    assert list(stream) == ["1, 2, 3"]
    assert sent(rsps) == recorded_request(recorded[0])
    assert rsps.calls[0].request.headers["Accept"] == "text/event-stream"
    assert stream.finish_reason == "stop"
    assert stream.usage == {"prompt_tokens": 19, "completion_tokens": 8, "total_tokens": 27, "cached_tokens": 0}
    assert stream.usage_raw is not None and stream.usage_raw["input_tokens"] == 19
    assert stream.model == "GigaChat-3-Ultra:32.3.18.5"


def test_env_chooses_v2(rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    replay(rsps, "test_primary_chat_create_simple.yaml")
    monkeypatch.setenv("GIGACHAT_API_VERSION", "v2")
    assert chat("Say 'Hello' and nothing else", stream=False, **config()).text == "Hello"


def test_session_and_async_on_v2(rsps: responses.RequestsMock) -> None:
    replay(rsps, "test_primary_achat_create_simple.yaml")
    replay(rsps, "test_primary_achat_stream_simple.yaml")
    with Session(api_version="v2", **config()) as session:
        assert session.chat("Say 'Hello' and nothing else", stream=False).text == "Hello"

        async def main() -> List[str]:
            stream = aio.chat("Count from 1 to 3", session=session)
            chunks = [chunk async for chunk in stream]
            assert stream.finish_reason == "stop" and stream.usage["total_tokens"] == 27
            return chunks

        assert asyncio.run(main()) == ["1, 2, 3"]
    assert all(call.request.url == V2 for call in rsps.calls)


class Answer(TypedDict):
    answer: str
    n: int


@dataclass
class AnswerData:
    answer: str
    n: int


SCHEMA = {"description": "Structured answer returned by response_format=json_schema.",
          "properties": {"answer": {"title": "Answer", "type": "string"},
                         "n": {"maximum": 10, "minimum": 0, "title": "N", "type": "integer"}},
          "required": ["answer", "n"], "title": "StructuredAnswer", "type": "object"}


@pytest.mark.parametrize("cassette", ["test_primary_chat_parse_json_schema.yaml", "test_primary_achat_parse_json_schema.yaml"])
def test_parse_json_schema_sends_what_the_sdk_sent(rsps: responses.RequestsMock, cassette: str) -> None:
    recorded = replay(rsps, cassette)
    result = parse('Return {"answer":"ok","n":3} exactly.', SCHEMA, api_version="v2", **config())
    assert result == {"answer": "ok", "n": 3}
    assert sent(rsps) == recorded_request(recorded[0])


@pytest.mark.parametrize("target, expected", [
    (Answer, {"answer": "ok", "n": 3}),
    (AnswerData, AnswerData("ok", 3)),
])
def test_parse_into_classes(rsps: responses.RequestsMock, target: Any, expected: Any) -> None:
    replay(rsps, "test_primary_chat_parse_json_schema.yaml")
    assert parse('Return {"answer":"ok","n":3} exactly.', target, api_version="v2", **config()) == expected
    wire = sent(rsps)["model_options"]["response_format"]
    assert wire["type"] == "json_schema" and wire["strict"] is True
    assert wire["schema"]["required"] == ["answer", "n"]
    assert wire["schema"]["properties"]["n"] == {"type": "integer"}


def test_parse_into_pydantic_model(rsps: responses.RequestsMock) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        answer: str
        n: int

    replay(rsps, "test_primary_chat_parse_json_schema.yaml")
    with Session(**config()) as session:
        result = session.parse('Return {"answer":"ok","n":3} exactly.', Model, api_version="v2")
    assert isinstance(result, Model) and result.n == 3
    assert sent(rsps)["model_options"]["response_format"]["schema"] == Model.model_json_schema()


def test_parse_failure_is_typed_and_keeps_the_reply(rsps: responses.RequestsMock) -> None:
    replay(rsps, "test_primary_chat_parse_json_schema.yaml")

    @dataclass
    class Other:
        answer: str
        count: int

    with pytest.raises(StructuredOutputError, match="has no 'count'") as caught:
        parse("x", Other, api_version="v2", **config())
    assert caught.value.text.startswith("{") and caught.value.reply.finish_reason == "stop"


@pytest.mark.parametrize("response_format", [{"type": "regex", "regex": r"[A-Z]{3}-\d{4}"}, re.compile(r"[A-Z]{3}-\d{4}")])
def test_regex_format_switches_to_v2_by_itself(rsps: responses.RequestsMock, response_format: Any) -> None:
    recorded = replay(rsps, "test_primary_chat_regex_format.yaml")
    assert parse("Generate one support ticket code.", response_format, **config()) == "TKT-2023"
    assert sent(rsps) == recorded_request(recorded[0])


def test_regex_mismatch_is_a_structured_output_error(rsps: responses.RequestsMock) -> None:
    replay(rsps, "test_primary_chat_regex_format.yaml")
    with pytest.raises(StructuredOutputError, match="does not match the regex"):
        parse("x", re.compile(r"\d+"), **config())


FUNCTION = {
    "name": "get_order_status", "description": "Get delivery status for an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string", "description": "Order identifier."}},
                   "required": ["order_id"]},
    "return_parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "status": {"type": "string"},
                                                           "eta": {"type": "string"}},
                          "required": ["order_id", "status", "eta"]},
}


def test_function_round_trip(rsps: responses.RequestsMock) -> None:
    recorded = replay(rsps, "test_primary_chat_function_tool_roundtrip.yaml")
    history: List[Any] = [{"role": "user", "content": "Check order A-1024 and answer naturally."}]
    reply = chat(history, stream=False, tools=[FUNCTION], tool_config="get_order_status", **config())
    assert isinstance(reply, ChatReplyV2)  # tools= is v2-only: the call switched by itself
    assert sent(rsps, 0) == recorded_request(recorded[0])
    assert reply.finish_reason == "function_call" and reply.text == "" and list(reply) == []
    assert reply.function_call == {"name": "get_order_status", "arguments": {"order_id": "A-1024"}}
    assert reply.tools_state_id == "019e8373-dc9a-7883-af60-ebb20b79e1e1"
    history += reply.function_result({"order_id": "A-1024", "status": "packed", "eta": "tomorrow"})
    final = chat(history, stream=False, tools=[FUNCTION], **config())
    assert sent(rsps, 1) == recorded_request(recorded[1])
    assert final.text == "Order A-1024 is currently packed and scheduled for delivery tomorrow."


def test_builtin_tools(rsps: responses.RequestsMock) -> None:
    recorded = replay(rsps, "test_primary_chat_builtin_tools.yaml")
    with Session(**config()) as session:
        search = session.chat("What is new in the latest stable Python release?", stream=False,
                              tools=[{"web_search": {"type": "actual_info_web_search"}}], tool_config="web_search")
        code = session.chat("Calculate the sum of the first 20 prime numbers. Use code.", stream=False,
                            tools=["code_interpreter"], tool_config="auto")
        page = session.chat("Read https://docs.python.org/3/library/pathlib.html and list three use cases for pathlib.",
                            stream=False, tools=["url_content_extraction"], tool_config="url_content_extraction")
        image = session.chat("Create a simple square icon concept for a Python SDK release.", stream=False,
                             tools=["image_generate"], tool_config="image_generate")
        for i in range(4):
            assert sent(rsps, i) == recorded_request(recorded[i])
        assert search.text.startswith("The latest stable release of Python")
        assert search.sources["2"]["url"] == "https://realpython.com/python-news-february-2026/"
        assert search.inline_data == {"images": []}
        assert search.usage is not None and search.usage["cached_tokens"] == 2557
        assert code.text == "The sum of the first 20 prime numbers is 639."
        assert "pathlib" in page.text and page.tools_state_id == "019e8374-7b4a-7ece-8c44-cea79f702dc3"
        assert image.files == [{"id": "f4b17167-3fa4-40aa-80c6-c737ee40d961", "mime": "image/jpeg", "target": "image"}]
        assert image.text == "A simple square icon concept for a Python SDK release has been created."
        rsps.add(responses.GET, BASE + "/files/f4b17167-3fa4-40aa-80c6-c737ee40d961/content", body=b"\xff\xd8jpeg")
        assert image.download() == b"\xff\xd8jpeg"
        assert image.download(image.files[0]) == b"\xff\xd8jpeg"
        with pytest.raises(ValueError, match="no file #1"):
            image.download(1)


def test_every_primary_cassette_is_replayed_here() -> None:
    import pathlib

    names = {p.name for p in (pathlib.Path(__file__).parent / "data" / "cassettes").glob("test_primary_*.yaml")}
    source = pathlib.Path(__file__).read_text("utf-8")
    assert names and all(name in source for name in names), names - {n for n in names if n in source}
