"""Conformance, v2: the official SDK's primary namespace runs unchanged against the emulator.

``client.chat.create/stream/parse`` and ``client.achat.*`` build the v2 URL from
``base_url`` themselves; each test runs over plain HTTP and over TLS with a throwaway
CA. The SDK is a test-only dependency; without it this module is skipped.
"""

import asyncio
import base64
import json
from typing import Any, Dict, List

import pytest

from gigachat_lite.emulator import Emulator, Fault
from test_emulator_sdk import OVER_HTTP_AND_TLS, clean_env, sdk_settings  # noqa: F401 (fixtures: shared, not copied)

gigachat = pytest.importorskip("gigachat")
exceptions = pytest.importorskip("gigachat.exceptions")
pydantic = pytest.importorskip("pydantic")
httpx = pytest.importorskip("httpx")

# The SDK itself hands httpx a CA path string, which httpx 0.28 deprecates; not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning"), OVER_HTTP_AND_TLS]

MODEL = "GigaChat-3-Ultra"
ORDER_TOOL = {"functions": {"specifications": [{
    "name": "get_order_status",
    "description": "Get delivery status for an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
}]}}


class Answer(pydantic.BaseModel):
    answer: str
    n: int = pydantic.Field(ge=2, le=10)
    steps: List[str]


def settings(emu: Emulator, **extra: Any) -> Dict[str, Any]:
    """The SDK's settings for the emulator, on the v2 recordings' model."""
    return sdk_settings(emu, **dict({"model": MODEL}, **extra))


def v2_paths(emu: Emulator) -> List[str]:
    return [r.path for r in emu.requests if "chat/completions" in r.path]


def test_create_stream_parse(emu):
    with gigachat.GigaChat(**settings(emu)) as client:
        response = client.chat.create("Say 'Hello' and nothing else")
        chunks = list(client.chat.stream("Count from 1 to 3"))
        completion, parsed = client.chat.parse("Return an answer", response_format=Answer)
    assert response.messages[0].content[0].text == "Echo: Say 'Hello' and nothing else"
    assert response.model == MODEL + ":emulator" and response.finish_reason == "stop"
    usage = response.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert [c.event for c in chunks][-1] == "response.message.done"
    assert "".join(c.messages[0].content[0].text for c in chunks[:-1]) == "Echo: Count from 1 to 3"
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage.output_tokens == len(chunks) - 1
    assert parsed == Answer(answer="text", n=2, steps=["text"])
    assert completion.messages[0].content[0].text.startswith("{\n")
    assert v2_paths(emu) == ["/api/v2/chat/completions"] * 3
    assert emu.oauth_calls == 1


def test_async_forms(emu):
    async def run() -> Any:
        async with gigachat.GigaChat(**settings(emu)) as client:
            created = await client.achat.create("hi")
            streamed = [chunk async for chunk in client.achat.stream("Count")]
            _, parsed = await client.achat.parse("give", response_format=Answer)
            return created, streamed, parsed

    created, streamed, parsed = asyncio.run(run())
    assert created.messages[0].content[0].text == "Echo: hi"
    assert [c.event for c in streamed] == ["response.message.delta"] * 2 + ["response.message.done"]
    assert "".join(c.messages[0].content[0].text for c in streamed[:-1]) == "Echo: Count"
    assert streamed[-1].finish_reason == "stop" and streamed[-1].usage.total_tokens > 0
    assert parsed.n == 2
    assert v2_paths(emu) == ["/api/v2/chat/completions"] * 3


@pytest.mark.slow
def test_function_round_trip(emu):
    ask = {"role": "user", "content": "Check order A-1024"}
    with gigachat.GigaChat(**settings(emu)) as client:
        first = client.chat.create({"messages": [ask], "tools": [ORDER_TOOL],
                                    "tool_config": {"mode": "forced", "function_name": "get_order_status"}})
        call = first.messages[0]
        assert first.finish_reason == "function_call"
        assert call.content[0].function_call.name == "get_order_status"
        assert call.content[0].function_call.arguments == {"order_id": "Check order A-1024"}
        assert call.tools_state_id  # the reply's tool_state_id, as the SDK names it
        result = {"role": "tool", "tools_state_id": call.tools_state_id, "content": [
            {"function_result": {"name": "get_order_status", "result": {"status": "packed", "eta": "tomorrow"}}}]}
        second = client.chat.create({"messages": [ask, call.model_dump(exclude_none=True, by_alias=True), result],
                                     "tools": [ORDER_TOOL]})
    assert second.finish_reason == "stop"
    assert second.messages[0].content[0].text == (
        'Function get_order_status returned: {"status": "packed", "eta": "tomorrow"}')
    sent = emu.requests[-1].json["messages"]
    assert [m.get("tools_state_id") for m in sent] == [None, call.tools_state_id, call.tools_state_id]


@pytest.mark.slow
def test_builtin_tools(emu):
    with gigachat.GigaChat(**settings(emu)) as client:
        image = client.chat.create({"messages": [{"role": "user", "content": "Draw an icon"}],
                                    "tools": ["image_generate"],
                                    "tool_config": {"mode": "forced", "tool_name": "image_generate"}})
        file = image.messages[0].content[0].files[0]
        jpeg = base64.b64decode(client.get_image(file.id_).content)
        search = client.chat.create({"messages": [{"role": "user", "content": "latest Python"}],
                                     "tools": [{"web_search": {"type": "actual_info_web_search"}}],
                                     "tool_config": {"mode": "forced", "tool_name": "web_search"}})
        streamed = list(client.chat.stream({"messages": [{"role": "user", "content": "compute"}],
                                            "tools": ["code_interpreter"]}))
    assert (file.mime, file.target) == ("image/jpeg", "image") and jpeg[:2] == b"\xff\xd8"
    assert image.messages[0].tools_state_id
    part = search.messages[0].content[0]
    assert part.inline_data.sources["1"].url.startswith("https://example.com/search?q=")
    assert streamed[0].messages[0].tools_state_id and streamed[-1].finish_reason == "stop"


def test_reasoning_does_not_leak_into_text(emu):
    payload = {"messages": [{"role": "user", "content": "Why?"}], "reasoning": {"effort": "low"}}
    with gigachat.GigaChat(**settings(emu)) as client:
        reply = client.chat.create(payload)
        chunks = list(client.chat.stream(payload))
        _, parsed = client.chat.parse(payload, response_format=Answer)  # reasoning must not break JSON
    assert emu.requests[-1].json["model_options"]["reasoning"] == {"effort": "low"}
    assert reply.messages[0].content[0].text == "Echo: Why?"
    assert reply.messages[0].reasoning_content == "Reasoning with low effort about: Why?"
    text = "".join(p.text for c in chunks[:-1] for p in (c.messages[0].content or []))
    assert text == "Echo: Why?" and parsed.answer == "text"


def test_errors_and_faults_reach_the_sdk_as_its_exceptions(emu):
    emu.add_fault(Fault(path="v2/chat/completions", status=429, retry_after="1", times=1))
    with gigachat.GigaChat(**settings(emu, max_retries=0)) as client:
        with pytest.raises(exceptions.RateLimitError):
            client.chat.create("hi")
        emu.add_fault(Fault(path="v2/chat/completions", cut_after=1, times=1))
        with pytest.raises(httpx.RemoteProtocolError):  # the chunked body never ended
            list(client.chat.stream("a long enough question to stream in pieces"))
        with pytest.raises(exceptions.NotFoundError):
            client.chat.create({"model": "Nope", "messages": [{"role": "user", "content": "hi"}]})
        with pytest.raises(exceptions.UnprocessableEntityError):
            client.chat.create({"messages": [{"role": "user", "content": "hi"}],
                                "tool_config": {"mode": "forced", "tool_name": "web_search"}})
        assert client.chat.create("after all that").messages[0].content[0].text == "Echo: after all that"


def test_ai_check_and_functions_convert(emu):
    openapi = {"openapi": "3.0.0", "paths": {"/status": {"get": {
        "operationId": "get_status", "summary": "Status of an order",
        "parameters": [{"name": "order_id", "in": "query", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"content": {"application/json": {"schema": {"type": "object"}}}}}}}}}
    with gigachat.GigaChat(**settings(emu)) as client:
        checked = client.check_ai("Hello there.", "GigaCheckDetection")
        converted = client.openapi_function_convert(json.dumps(openapi))
    assert (checked.category, checked.characters, checked.ai_intervals) == ("human", 12, [])
    (function,) = converted.functions
    assert (function.name, function.description) == ("get_status", "Status of an order")
    assert function.parameters.required == ["order_id"]
