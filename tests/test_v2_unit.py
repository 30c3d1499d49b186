"""v2 without recordings: the contract choice, bad input refused before any request, the body
for v1-style settings, reasoning kept apart, streamed tools, errors, ai/check, functions/convert."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, Iterator

import pytest
import responses

import gigachat_lite
from gigachat_lite import APIError, Config, InvalidResponseError, Session, StreamError, aio, ai_check, chat, functions_convert
from gigachat_lite import ChatReply, ChatStream, ChatStreamV2

from conftest import BASE, fixture_json

V2 = "https://gigachat.test/api/v2/chat/completions"
CONFIG: Dict[str, Any] = {"access_token": "test-token", "base_url": BASE}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def sse(*events: Dict[str, Any], names: bool = True) -> bytes:
    out = b""
    for i, event in enumerate(events):
        name = "response.message.done" if "finish_reason" in event else "response.message.delta"
        out += (f"event: {name}\n" if names else "").encode() + b"data: " + json.dumps(event).encode() + b"\n\n"
    return out


def delta(*parts: Dict[str, Any], **message: Any) -> Dict[str, Any]:
    return {"model": "GigaChat-3", "created_at": 1, "messages": [{"role": "assistant", "content": list(parts), **message}]}


DONE = {"model": "GigaChat-3", "created_at": 1, "finish_reason": "stop",
        "usage": {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 3, "total_tokens": 8}}


def body(rsps: responses.RequestsMock, i: int = 0) -> Dict[str, Any]:
    return json.loads(rsps.calls[i].request.body)  # type: ignore[arg-type, no-any-return]


# -- the setting -----------------------------------------------------------------------------


def test_api_version_setting_and_environment() -> None:
    assert Config.resolve(access_token="t", env={}).api_version is None  # not chosen: v1 by default
    assert Config.resolve(access_token="t", env={"GIGACHAT_API_VERSION": "V2"}).api_version == "v2"
    assert Config.resolve(access_token="t", api_version="v1", env={"GIGACHAT_API_VERSION": "v2"}).api_version == "v1"
    with pytest.raises(ValueError, match="api_version.*'v3'"):
        Config.resolve(access_token="t", env={"GIGACHAT_API_VERSION": "v3"})
    with pytest.raises(TypeError, match="api_version"):
        Config.resolve(access_token="t", api_version=2, env={})  # type: ignore[arg-type]


def test_bad_api_version_is_refused_before_any_request(rsps: responses.RequestsMock) -> None:
    with pytest.raises(ValueError, match="api_version"):
        chat("hi", api_version="v3", **CONFIG)
    with Session(**CONFIG) as session, pytest.raises(ValueError, match="api_version"):
        session.chat("hi", api_version="2")
    assert not rsps.calls


def test_default_stays_v1(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, BASE + "/chat/completions", json={
        "choices": [{"message": {"role": "assistant", "content": "ok", "reasoning_content": "thinking"},
                     "index": 0, "finish_reason": "stop"}], "created": 1, "model": "GigaChat", "object": "chat.completion",
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    reply = chat("hi", stream=False, response_format={"type": "object"}, reasoning_effort="high", **CONFIG)
    assert type(reply) is ChatReply and reply.text == "ok" and reply.reasoning == "thinking"
    sent = body(rsps)
    assert sent["messages"] == [{"role": "user", "content": "hi"}]  # v1 shape; v1 takes these two top-level
    assert sent["response_format"] == {"type": "json_schema", "schema": {"type": "object"}, "strict": True}
    assert sent["reasoning_effort"] == "high"
    assert list(reply.iter_events()) == [("reasoning", "thinking"), ("text", "ok")]


@pytest.mark.parametrize("feature", [
    {"tools": ["web_search"]}, {"tool_config": "auto"}, {"response_format": {"type": "regex", "regex": "a+"}},
    {"model_options": {"temperature": 0.5}}, {"top_logprobs": 3}, {"parallel_tool_calls": True},
])
def test_explicit_v1_with_a_v2_feature_is_a_value_error_naming_both(rsps: responses.RequestsMock, feature: Dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"needs the v2 contract, but api_version is 'v1'"):
        chat("hi", api_version="v1", **CONFIG, **feature)
    assert not rsps.calls


@pytest.mark.parametrize("base, url", [
    ("https://gigachat.devices.sberbank.ru/api/v1", "https://gigachat.devices.sberbank.ru/api/v2/chat/completions"),
    ("https://api.giga.chat/v1", "https://api.giga.chat/v2/chat/completions"),
    ("http://127.0.0.1:8080/custom", "http://127.0.0.1:8080/custom/chat/completions"),
])
def test_url_derivation(rsps: responses.RequestsMock, base: str, url: str) -> None:
    rsps.post(url, json={**delta({"text": "ok"}), "finish_reason": "stop"})
    assert chat("hi", stream=False, api_version="v2", access_token="test-token", base_url=base).text == "ok"
    assert rsps.calls[0].request.url == url


# -- bad input, refused locally ------------------------------------------------------------------


@pytest.mark.parametrize("messages, params, error, message", [
    ([{"role": "user", "content": "a"}, {"role": "user", "content": [{"img": "x"}]}], {}, ValueError,
     r"messages\[1\]\.content\[0\]: unknown part 'img'"),
    ([{"role": "user", "content": [{"text": 5}]}], {}, TypeError, r"messages\[0\]\.content\[0\]\['text'\] must be a str"),
    ([{"role": "user", "content": [{"files": [{"name": "x"}]}]}], {}, TypeError, r"content\[0\]\['files'\]\[0\]"),
    ([{"role": "user", "content": [42]}], {}, TypeError, r"messages\[0\]\.content\[0\]: a part must be a dict"),
    ([{"role": "robot", "content": "x"}], {}, ValueError, r"messages\[0\]\['role'\]"),
    ([{"role": "user", "content": 3}], {}, TypeError, r"messages\[0\]\['content'\]"),
    ([{"role": "tool", "content": [{"function_result": {"name": "f"}}]}], {}, TypeError, r"function_result"),
    ("", {}, ValueError, "empty"),
    ("hi", {"tools": ["web_serch"]}, ValueError, r"tools\[0\]: unknown built-in tool 'web_serch'"),
    ("hi", {"tools": [{"web_search": 1}]}, TypeError, r"tools\[0\]\['web_search'\]"),
    ("hi", {"tool_config": {"mode": "forced"}}, ValueError, "tool_name"),
    ("hi", {"tool_config": "nope"}, ValueError, "tool_config: 'nope'"),
    ("hi", {"temperature": -1}, ValueError, "temperature must be > 0"),
    ("hi", {"max_tokens": "10"}, TypeError, "max_tokens must be an int"),
    ("hi", {"reasoning_effort": " "}, ValueError, "reasoning_effort must be a non-empty str"),
    ("hi", {"response_format": 5}, TypeError, "response_format must be"),
    ("hi", {"response_format": {"type": "regex", "regex": "("}}, ValueError, "bad regex"),
    ("hi", {"n": 2}, ValueError, "n: v2 returns one answer"),
    ("hi", {"model_options": 3}, TypeError, "model_options must be a dict"),
])
def test_bad_v2_input_is_refused_with_no_request(
    rsps: responses.RequestsMock, messages: Any, params: Dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        chat(messages, api_version="v2", **CONFIG, **params)
    with pytest.raises(error, match=message):
        aio.chat(messages, api_version="v2", **CONFIG, **params)
    assert not rsps.calls


def test_v1_settings_go_under_model_options(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, V2, body=sse(delta({"text": "ok"}), DONE), content_type="text/event-stream")
    functions = [{"name": "f", "parameters": {"type": "object", "properties": {}}}]
    stream = chat(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi", "attachments": ["file-1"]}],
        api_version="v2", temperature=0.3, top_p=0.9, max_tokens=50, repetition_penalty=1.1, update_interval=0.5,
        reasoning_effort="low", functions=functions, function_call="auto", profanity_check=True, flags=["x"], **CONFIG,
    )
    assert "".join(stream) == "ok"
    assert body(rsps) == {
        "model": "GigaChat",
        "messages": [{"role": "system", "content": [{"text": "be brief"}]},
                     {"role": "user", "content": [{"text": "hi"}, {"files": [{"id": "file-1"}]}]}],
        "stream": True,
        "model_options": {"temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "repetition_penalty": 1.1,
                          "update_interval": 0.5, "reasoning": {"effort": "low"}},
        "tools": [{"functions": {"specifications": functions}}],
        "tool_config": {"mode": "auto"},
        "disable_filter": False, "flags": ["x"],  # the official SDK sends profanity_check=True as disable_filter=False
    }


# -- streams ----------------------------------------------------------------------------------------


def test_stream_keeps_reasoning_apart(rsps: responses.RequestsMock) -> None:
    events = [delta({"reasoning": "Let me "}), delta({"reasoning": {"text": "think."}}), delta({"text": "4"}),
              delta({"text": "2"}, reasoning_content="!"), DONE]
    for _ in range(3):
        rsps.add(responses.POST, V2, body=sse(*events), content_type="text/event-stream")
    stream = chat("6*7?", api_version="v2", reasoning_effort="high", **CONFIG)
    assert list(stream) == ["4", "2"] and stream.reasoning == "Let me think.!" and stream.text == "42"
    assert stream.usage == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8, "cached_tokens": 2}
    assert body(rsps)["model_options"] == {"reasoning": {"effort": "high"}}

    stream = chat("6*7?", api_version="v2", **CONFIG)
    assert list(stream.iter_events()) == [("reasoning", "Let me "), ("reasoning", "think."), ("text", "4"),
                                          ("reasoning", "!"), ("text", "2")]
    assert stream.text == "42"

    stream = chat("6*7?", api_version="v2", **CONFIG)
    assert list(stream.iter_reasoning()) == ["Let me ", "think.", "!"]
    assert stream.text == "42" and stream.finish_reason == "stop"


def test_v1_stream_reasoning_content_never_in_chunks(rsps: responses.RequestsMock) -> None:
    def v1(delta: Dict[str, Any], **extra: Any) -> Dict[str, Any]:
        return {"choices": [{"delta": delta, "index": 0, **extra}], "created": 1, "model": "GigaChat", "object": "chat.completion"}

    raw = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in [
        v1({"role": "assistant", "reasoning_content": "hm"}), v1({"content": "ok"}),
        v1({"content": "", "reasoning_content": "."}, finish_reason="stop")]) + b"data: [DONE]\n\n"
    rsps.add(responses.POST, BASE + "/chat/completions", body=raw, content_type="text/event-stream")
    rsps.add(responses.POST, BASE + "/chat/completions", body=raw, content_type="text/event-stream")
    stream = chat("hi", **CONFIG)
    assert type(stream) is ChatStream and list(stream) == ["ok"] and stream.reasoning == "hm."
    assert list(chat("hi", **CONFIG).iter_events()) == [("reasoning", "hm"), ("text", "ok"), ("reasoning", ".")]


def test_streamed_function_call_round_trip(rsps: responses.RequestsMock) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Moscow"}}
    rsps.add(responses.POST, V2, content_type="text/event-stream", body=sse(
        delta({"function_call": call}, tool_state_id="state-1"),
        {**DONE, "finish_reason": "function_call"}))
    stream = chat("weather?", tools=[{"name": "get_weather", "parameters": {}}], **CONFIG)
    assert isinstance(stream, ChatStreamV2)
    messages = stream.function_result({"temp": -5})
    assert stream.function_call == call and stream.tools_state_id == "state-1"
    assert messages == [
        {"role": "assistant", "content": [{"function_call": call}], "tools_state_id": "state-1"},
        {"role": "tool", "content": [{"function_result": {"name": "get_weather", "result": {"temp": -5}}}],
         "tools_state_id": "state-1"},
    ]
    with pytest.raises(TypeError, match="JSON"):
        stream.function_result({1, 2})


def test_reply_without_function_call_has_no_function_result(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, V2, json={**delta({"text": "hi"}), "finish_reason": "stop"})
    reply = chat("hi", stream=False, api_version="v2", **CONFIG)
    with pytest.raises(ValueError, match="did not call a function"):
        reply.function_result({})
    assert reply.assistant_message() == {"role": "assistant", "content": [{"text": "hi"}]}


def test_error_inside_a_v2_stream_is_api_error_after_the_chunks(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, V2, content_type="text/event-stream",
             body=sse(delta({"text": "a"})) + b"event: error\ndata: {\"status\": 500, \"message\": \"boom\"}\n\n")
    stream = chat("hi", api_version="v2", **CONFIG)
    assert next(stream) == "a"
    with pytest.raises(APIError, match="boom"):
        next(stream)


def test_cut_v2_stream_is_stream_error(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, V2, content_type="text/event-stream", body=sse(delta({"text": "a"})))
    stream = chat("hi", api_version="v2", **CONFIG)
    assert next(stream) == "a"
    with pytest.raises(StreamError, match="after 1 events"):
        next(stream)


def test_v2_error_status_is_typed(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, V2, status=422, json={"status": 422, "message": "Invalid params"})
    with pytest.raises(gigachat_lite.BadRequestError, match="Invalid params"):
        chat("hi", api_version="v2", stream=False, max_retries=0, **CONFIG)


def test_v2_reply_without_messages_is_an_invalid_response(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, V2, json={"choices": []})
    with pytest.raises(InvalidResponseError, match="no messages"):
        chat("hi", api_version="v2", stream=False, **CONFIG)


def test_async_parse_and_reasoning_attribute(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, V2, json={**delta({"reasoning": "r"}, {"text": '{"a": 1}'}), "finish_reason": "stop"})

    async def main() -> Any:
        return await aio.parse("json please", {"type": "object", "required": ["a"]}, api_version="v2", **CONFIG)

    assert asyncio.run(main()) == {"a": 1}
    assert body(rsps)["model_options"]["response_format"]["schema"] == {"type": "object", "required": ["a"]}


# -- ai/check and functions/convert ---------------------------------------------------------------


def test_ai_check(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, BASE + "/ai/check", json=fixture_json("ai_check.json"))
    result = ai_check("Какой-то текст", "GigaCheckDetection", **CONFIG)
    assert result["category"] == "mixed" and result["ai_intervals"] == [[1, 262], [415, 533]]
    assert body(rsps) == {"input": "Какой-то текст", "model": "GigaCheckDetection"}
    with pytest.raises(ValueError, match="text"):
        ai_check("  ", **CONFIG)


def test_functions_convert_session_and_async(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, BASE + "/functions/convert", json=fixture_json("convert_functions.json"))
    rsps.add(responses.POST, BASE + "/functions/convert", json=fixture_json("convert_functions.json"))
    with Session(**CONFIG) as session:
        functions = session.functions_convert({"openapi": "3.0.0", "paths": {}})
        assert functions[0]["name"] == "send_sms"
        assert json.loads(rsps.calls[0].request.body) == {"openapi": "3.0.0", "paths": {}}  # type: ignore[arg-type]
        assert asyncio.run(aio.functions_convert("openapi: 3.0.0\n", session=session))[0]["name"] == "send_sms"
        assert rsps.calls[1].request.body == b"openapi: 3.0.0\n"
    with pytest.raises(TypeError, match="openapi"):
        functions_convert(5, **CONFIG)


def test_ai_check_on_a_session_and_async(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, BASE + "/ai/check", json=fixture_json("ai_check.json"))
    rsps.add(responses.POST, BASE + "/ai/check", json=fixture_json("ai_check.json"))
    with Session(model="GigaChat-2", **CONFIG) as session:
        assert session.ai_check("text")["tokens"] == 224
        assert body(rsps)["model"] == "GigaChat-2"
        assert asyncio.run(aio.ai_check("text", session=session))["characters"] == 533


def test_public_names() -> None:
    for name in ("parse", "ai_check", "functions_convert", "StructuredOutputError", "ChatStreamV2", "ChatReplyV2"):
        assert name in gigachat_lite.__all__ and hasattr(gigachat_lite, name)
    for name in ("parse", "ai_check", "functions_convert"):
        assert name in aio.__all__
    assert issubclass(gigachat_lite.StructuredOutputError, gigachat_lite.GigaChatError)




# -- parsers keep their own state ------------------------------------------------------------------


def test_streams_join_function_arguments_sent_in_fragments_on_both_contracts() -> None:
    # OpenAI-style servers send the arguments as JSON text in fragments; the stream joins them at the end.
    v1 = ChatStream.from_chunks([
        b"data: " + json.dumps({"choices": [{"delta": {"function_call": {"name": "w", "arguments": fragment}}, "index": 0}],
                                "model": "m"}).encode() + b"\n\n"
        for fragment in ('{"city": ', '"Moscow"}')
    ] + [b'data: {"choices": [{"delta": {}, "index": 0, "finish_reason": "function_call"}]}\n\n'])
    assert list(v1) == [] and v1.finish_reason == "function_call"
    assert v1.function_call == {"name": "w", "arguments": {"city": "Moscow"}}
    v2 = ChatStreamV2.from_chunks([sse(delta({"function_call": {"name": "w", "arguments": '{"a": '}}),
                                       delta({"function_call": {"arguments": "1}"}}), DONE)])
    assert list(v2) == [] and v2.finish_reason == "stop"
    assert v2.function_call == {"name": "w", "arguments": {"a": 1}}


def test_async_stream_knows_reasoning_before_it_starts() -> None:
    stream = aio.chat("hi", api_version="v2", **CONFIG)
    assert stream.reasoning == "" and stream.tools_state_id is None and stream.tool_calls == []
    asyncio.run(stream.aclose())


def test_async_chat_events_keep_reasoning_apart(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, V2, content_type="text/event-stream",
             body=sse(delta({"reasoning": "hm"}), delta({"text": "4"}), delta({"text": "2"}), DONE))

    async def main() -> Any:
        stream = aio.chat_events("6*7?", api_version="v2", **CONFIG)
        events = [event async for event in stream]
        return events, stream.text, stream.reasoning, stream.finish_reason

    assert asyncio.run(main()) == ([("reasoning", "hm"), ("text", "4"), ("text", "2")], "42", "hm", "stop")
    with pytest.raises(ValueError, match="unknown part"):
        aio.chat_events([{"role": "user", "content": [{"img": 1}]}], api_version="v2", **CONFIG)


def test_a_v1_function_history_becomes_v2_parts(rsps: responses.RequestsMock) -> None:
    rsps.post(V2, json={**delta({"text": "ok"}), "finish_reason": "stop"})
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "function_call": {"name": "w", "arguments": {"city": "M"}},
         "functions_state_id": "s-1"},
        {"role": "function", "name": "w", "content": '{"t": -5}'},
    ]
    chat(history, stream=False, api_version="v2", **CONFIG)
    assert body(rsps)["messages"][1:] == [
        {"role": "assistant", "content": [{"function_call": {"name": "w", "arguments": {"city": "M"}}}], "tools_state_id": "s-1"},
        {"role": "tool", "content": [{"function_result": {"name": "w", "result": {"t": -5}}}], "tools_state_id": "s-1"},
    ]
    with pytest.raises(ValueError, match=r"messages\[0\]\['name'\]"):
        chat([{"role": "function", "content": "{}"}], stream=False, api_version="v2", **CONFIG)


def test_two_calls_of_one_function_without_ids_stay_two(rsps: responses.RequestsMock) -> None:
    # Parallel calls, each whole (arguments an object), naming no id: the second is not the first's continuation.
    moscow = {"function_call": {"name": "weather", "arguments": {"city": "Moscow"}}}
    paris = {"function_call": {"name": "weather", "arguments": {"city": "Paris"}}}
    rsps.post(f"{BASE.replace('/v1', '/v2')}/chat/completions",
              json={**delta(moscow, paris), "finish_reason": "function_call"})
    reply = chat("weather in Moscow and Paris", stream=False, api_version="v2", **CONFIG)
    assert [call.arguments for call in reply.tool_calls] == [{"city": "Moscow"}, {"city": "Paris"}]
    stream = ChatStreamV2.from_chunks([sse(delta(moscow), delta(paris), {**DONE, "finish_reason": "function_call"})])
    assert list(stream) == [] and [call.arguments for call in stream.tool_calls] == [{"city": "Moscow"}, {"city": "Paris"}]
