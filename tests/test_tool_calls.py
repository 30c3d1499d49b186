"""Parallel tool calls (issue 22): every call, in order, with its id, on both contracts, sync, aio and gpt4free.

Against the emulator, which answers a v2 prompt naming two offered functions with
two ``function_call`` parts (ids, and streamed argument fragments), checks the
ids of the results sent back, and gives v1 calls an id with ``call_ids="always"``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List

import pytest

import gigachat_lite
from gigachat_lite import ToolCall, aio
from gigachat_lite.emulator import Emulator

pytestmark = pytest.mark.gigachat_emulator(shared=True)

WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
RATE = {"name": "get_rate", "description": "Exchange rate",
        "parameters": {"type": "object", "properties": {"currency": {"type": "string"}}, "required": ["currency"]}}
ASK = "Call get_weather and get_rate, please"


def _check_calls(calls: List[ToolCall]) -> None:
    assert [call.name for call in calls] == ["get_weather", "get_rate"]
    assert all(isinstance(call.id, str) and call.id for call in calls) and calls[0].id != calls[1].id
    assert all(isinstance(call.arguments, dict) for call in calls)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_v2_gives_every_call_with_its_id_and_takes_every_result_back(gigachat_emulator: Emulator, stream: bool) -> None:
    config = gigachat_emulator.client_config()
    reply = gigachat_lite.chat(ASK, stream=stream, tools=[WEATHER, RATE], parallel_tool_calls=True, **config)
    assert "".join(reply) == ""
    assert reply.finish_reason == "function_call"
    _check_calls(reply.tool_calls)
    assert reply.function_call == reply.tool_calls[0].as_dict()
    first, second = reply.tool_calls
    history = [{"role": "user", "content": ASK}, *reply.tool_results({second.id: {"rub": 90}, first.id: {"t": 12}})]
    assert history[-1]["content"][0]["function_result"]["id"] == first.id  # answers go in the calls' order
    sent = gigachat_emulator.requests
    answer = gigachat_lite.chat(history, stream=False, tools=[WEATHER, RATE], **config)
    assert answer.text == 'Function get_weather returned: {"t": 12} Function get_rate returned: {"rub": 90}'
    body = json.loads(sent[-1].body)
    assert [part["function_result"]["id"] for part in body["messages"][-1]["content"]] == [first.id, second.id]
    assert body["messages"][1]["tools_state_id"] == reply.tools_state_id


def test_parallel_tool_calls_goes_under_model_options_and_false_keeps_one_call(gigachat_emulator: Emulator) -> None:
    config = gigachat_emulator.client_config()
    one = gigachat_lite.chat(ASK, stream=False, tools=[WEATHER, RATE], parallel_tool_calls=False, **config)
    body = json.loads(gigachat_emulator.requests[-1].body)
    assert body["model_options"] == {"parallel_tool_calls": False} and "parallel_tool_calls" not in body
    assert [call.name for call in one.tool_calls] == ["get_weather"]


def test_results_by_list_and_every_mistake_named(gigachat_emulator: Emulator) -> None:
    reply = gigachat_lite.chat(ASK, stream=False, tools=[WEATHER, RATE], **gigachat_emulator.client_config())
    messages = reply.tool_results([{"t": 12}, 90])
    parts = messages[-1]["content"]
    assert [p["function_result"]["result"] for p in parts] == [{"t": 12}, {"result": 90}]  # v2 takes objects
    with pytest.raises(ValueError, match="2 calls"):
        reply.tool_results([{"t": 12}])
    with pytest.raises(ValueError, match="no result for call #1 'get_rate'"):
        reply.tool_results({reply.tool_calls[0].id: {}})
    with pytest.raises(ValueError, match="did not call"):
        reply.tool_results({reply.tool_calls[0].id: {}, reply.tool_calls[1].id: {}, "nope": {}})
    with pytest.raises(TypeError, match="cannot be sent as JSON"):
        reply.tool_results([{"t": float("nan")}, {}])
    with pytest.raises(ValueError, match="tool_results"):
        reply.function_result({"t": 12})


def test_results_by_name_when_calls_have_no_id(gigachat_emulator: Emulator) -> None:
    config = gigachat_emulator.client_config()
    reply = gigachat_lite.chat("Call get_weather", stream=False, tools=[WEATHER, RATE], **config)
    assert [(call.id, call.name) for call in reply.tool_calls] == [(None, "get_weather")]  # a lone call, as recorded
    history = [{"role": "user", "content": "Call get_weather"}, *reply.tool_results({"get_weather": {"t": 3}})]
    assert gigachat_lite.chat(history, stream=False, tools=[WEATHER, RATE], **config).text == \
        'Function get_weather returned: {"t": 3}'


@pytest.mark.gigachat_emulator(call_ids="always")
def test_v1_keeps_the_call_id_the_server_sends(gigachat_emulator: Emulator) -> None:
    config = gigachat_emulator.client_config()
    for stream in (False, True):
        reply = gigachat_lite.chat("Call get_weather", stream=stream, functions=[WEATHER], **config)
        "".join(reply)
        [call] = reply.tool_calls
        assert call.name == "get_weather" and call.id
        assert reply.function_call is not None and reply.function_call["id"] == call.id
        assert reply.assistant_message()["function_call"]["id"] == call.id


def test_tool_config_any_chooses_among_named_functions(gigachat_emulator: Emulator) -> None:
    reply = gigachat_lite.chat("hello", stream=False, tools=[WEATHER, RATE],
                               tool_config={"mode": "any", "functions_names_any": ["get_rate"]},
                               **gigachat_emulator.client_config())
    body = json.loads(gigachat_emulator.requests[-1].body)
    assert body["tool_config"] == {"mode": "any", "functions_names_any": ["get_rate"]}
    assert reply.finish_reason == "function_call" and reply.tool_calls


def test_aio_streams_give_every_call(gigachat_emulator: Emulator) -> None:
    config = gigachat_emulator.client_config()

    async def main() -> List[ToolCall]:
        stream = aio.chat(ASK, tools=[WEATHER, RATE], **config)
        assert stream.tool_calls == []  # nothing before it starts
        async for _ in stream:
            pass
        assert stream.tool_results([{}, {}])[0]["content"][0]["function_call"]["name"] == "get_weather"
        return stream.tool_calls

    _check_calls(asyncio.run(main()))


def test_the_gpt4free_provider_gives_every_call_to_gpt4free(gigachat_emulator: Emulator) -> None:
    pytest.importorskip("g4f")
    from g4f.client import Client

    config = gigachat_emulator.client_config()
    client = Client(provider=gigachat_lite.GigaChat)
    tools = [{"type": "function", "function": WEATHER}, {"type": "function", "function": RATE}]
    completion = client.chat.completions.create(
        model="GigaChat", messages=[{"role": "user", "content": ASK}], tools=tools, api_version="v2",
        parallel_tool_calls=True, api_key=config["api_key"], base_url=config["base_url"], auth_url=config["auth_url"])
    calls = completion.choices[0].message.tool_calls
    assert [call.function.name for call in calls] == ["get_weather", "get_rate"]
    assert len({call.id for call in calls}) == 2
    # ... and the results go back by id, one tool message each, as OpenAI clients send them.
    history: List[Dict[str, Any]] = [
        {"role": "user", "content": ASK},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": call.function.arguments}}
            for call in calls]},
        *({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"ok": call.function.name})} for call in calls),
    ]
    answer = client.chat.completions.create(model="GigaChat", messages=history, tools=tools, api_version="v2",
                                            api_key=config["api_key"], base_url=config["base_url"],
                                            auth_url=config["auth_url"])
    assert answer.choices[0].message.content == \
        'Function get_weather returned: {"ok": "get_weather"} Function get_rate returned: {"ok": "get_rate"}'
