"""Conformance, issue 22: the official SDK 0.2.4a1's parallel function calls run unchanged
against the emulator: several calls with ids, whole and streamed, ``parallel_tool_calls``,
``tool_config`` mode ``any``, the results sent back in one ``tool`` message or one per
result, sync and async; v1's call ``id`` sent back. Over plain HTTP and over TLS.
"""

import asyncio
import json
from typing import Any, Dict, List

import pytest

from gigachat_lite.emulator import Emulator
from test_emulator_sdk_today import settings
from test_emulator_sdk import clean_env  # noqa: F401 (autouse fixture: no GIGACHAT_* leaks in)

gigachat = pytest.importorskip("gigachat")
exceptions = pytest.importorskip("gigachat.exceptions")
chat_models = pytest.importorskip("gigachat.models.chat")

pytestmark = [
    pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning"),
    pytest.mark.parametrize("gigachat_emulator", [{}, dict(tls=True)], ids=["http", "https"], indirect=True),
]

TOOLS = [{"functions": {"specifications": [
    {"name": "get_weather", "description": "Weather in a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"name": "get_rate", "description": "Exchange rate",
     "parameters": {"type": "object", "properties": {"currency": {"type": "string"}}, "required": ["currency"]}},
]}}]
ASK = {"role": "user", "content": "Use get_weather for Kazan and get_rate for USD"}


def calls(message: Any) -> List[Any]:
    return [part.function_call for part in message.content if part.function_call is not None]


def results_for(message: Any, grouped: bool) -> List[Dict[str, Any]]:
    """The tool message(s) answering every call of ``message`` (results keyed by call id)."""
    parts = [{"function_result": {"id": c.id_, "name": c.name, "result": {"answer": "%s done" % c.name}}}
             for c in calls(message)]
    if grouped:
        return [{"role": "tool", "tools_state_id": message.tools_state_id, "content": parts}]
    return [{"role": "tool", "tools_state_id": message.tools_state_id, "content": [part]} for part in parts]


@pytest.mark.slow
@pytest.mark.parametrize("grouped", [True, False], ids=["one-tool-message", "one-message-per-result"])
def test_parallel_calls_round_trip(emu, grouped):
    with gigachat.GigaChat(**settings(emu)) as client:
        first = client.chat.create({"messages": [ASK], "tools": TOOLS, "parallel_tool_calls": True})
        message = first.messages[0]
        history = [ASK, message.model_dump(exclude_none=True, by_alias=True)] + results_for(message, grouped)
        second = client.chat.create({"messages": history, "tools": TOOLS})
    assert first.finish_reason == "function_call"
    made = calls(message)
    assert [(c.name, c.arguments) for c in made] == [
        ("get_weather", {"city": ASK["content"]}), ("get_rate", {"currency": ASK["content"]})]
    assert len({c.id_ for c in made}) == 2 and all(made_id for made_id in (c.id_ for c in made))
    sent = emu.requests[1].json
    assert sent["model_options"] == {"parallel_tool_calls": True} and "parallel_tool_calls" not in sent
    assert second.finish_reason == "stop"
    assert second.messages[0].content[0].text == (
        'Function get_weather returned: {"answer": "get_weather done"} '
        'Function get_rate returned: {"answer": "get_rate done"}')


@pytest.mark.slow
def test_parallel_calls_streamed_in_fragments(emu):
    with gigachat.GigaChat(**settings(emu)) as client:
        whole = calls(client.chat.create({"messages": [ASK], "tools": TOOLS}).messages[0])
        chunks = list(client.chat.stream({"messages": [ASK], "tools": TOOLS}))
    joined: Dict[str, Dict[str, str]] = {}
    for chunk in chunks[:-1]:
        for part in chunk.messages[0].content:
            call = part.function_call
            joined.setdefault(call.id_, {"name": call.name, "arguments": ""})["arguments"] += call.arguments
    assert [(c["name"], json.loads(c["arguments"])) for c in joined.values()] == [(c.name, c.arguments) for c in whole]
    assert chunks[0].messages[0].tools_state_id
    assert chunks[-1].event == "response.message.done" and chunks[-1].finish_reason == "function_call"


@pytest.mark.slow
def test_parallel_off_and_mode_any(emu):
    with gigachat.GigaChat(**settings(emu)) as client:
        single = client.chat.create({"messages": [ASK], "tools": TOOLS, "model_options": {"parallel_tool_calls": False}})
        only_rate = client.chat.create({"messages": [ASK], "tools": TOOLS,
                                        "tool_config": {"mode": "any", "functions_names_any": ["get_rate"]}})
        with pytest.raises(exceptions.UnprocessableEntityError):
            client.chat.create({"messages": [ASK], "tools": TOOLS,
                                "tool_config": {"mode": "any", "functions_names_any": ["get_time"]}})
    (call,) = calls(single.messages[0])
    assert (call.id_, call.name) == (None, "get_weather")  # a lone call carries no id, as recorded
    assert [c.name for c in calls(only_rate.messages[0])] == ["get_rate"]


@pytest.mark.slow
def test_mismatched_results_are_refused(emu):
    with gigachat.GigaChat(**settings(emu)) as client:
        message = client.chat.create({"messages": [ASK], "tools": TOOLS}).messages[0]
        results = results_for(message, grouped=True)
        results[0]["content"] = results[0]["content"][:1]  # the second call left unanswered
        with pytest.raises(exceptions.UnprocessableEntityError) as refused:
            client.chat.create({"messages": [ASK, message.model_dump(exclude_none=True, by_alias=True)] + results,
                                "tools": TOOLS})
    assert "has no function_result" in str(refused.value)


def test_the_captured_follow_up_with_an_assistant(emu):
    # sdk-0.2.4a1-requests.json, "v2 create storage False + assistant_id + tool_state alias": no model, the
    # assistant's instead; the state id given as tool_state_id on the call, at the top level too
    with gigachat.GigaChat(**settings(emu)) as client:
        assistant = client.assistants.create(model="GigaChat-3-Ultra", name="helper")
        reply = client.chat.create({
            "messages": [
                {"role": "assistant", "tool_state_id": "st-9", "content": [
                    {"function_call": {"id": "c1", "name": "get_weather", "arguments": {"city": "Moscow"}}},
                    {"function_call": {"id": "c2", "name": "get_rate", "arguments": {"currency": "USD"}}}]},
                {"role": "tool", "tools_state_id": "st-9", "content": [
                    {"function_result": {"id": "c1", "name": "get_weather", "result": {"t": 12}}},
                    {"function_result": {"id": "c2", "name": "get_rate", "result": {"rub": 90}}}]}],
            "assistant_id": assistant.assistant_id, "tool_state_id": "st-9", "storage": False})
    sent = emu.requests[-1].json
    assert "model" not in sent and sent["tools_state_id"] == "st-9" and "storage" not in sent
    assert reply.model == "GigaChat-3-Ultra:emulator"
    assert reply.messages[0].content[0].text == (
        'Function get_weather returned: {"t": 12} Function get_rate returned: {"rub": 90}')


@pytest.mark.slow
def test_async_parallel_calls(emu):
    async def run() -> Any:
        async with gigachat.GigaChat(**settings(emu)) as client:
            first = await client.achat.create({"messages": [ASK], "tools": TOOLS})
            streamed = [chunk async for chunk in client.achat.stream({"messages": [ASK], "tools": TOOLS})]
            message = first.messages[0]
            history = [ASK, message.model_dump(exclude_none=True, by_alias=True)] + results_for(message, grouped=False)
            return first, streamed, await client.achat.create({"messages": history, "tools": TOOLS})

    first, streamed, second = asyncio.run(run())
    assert [c.name for c in calls(first.messages[0])] == ["get_weather", "get_rate"]
    ids = {part.function_call.id_ for chunk in streamed[:-1] for part in chunk.messages[0].content}
    assert len(ids) == 2
    assert second.messages[0].content[0].text.startswith('Function get_weather returned: {"answer"')


@pytest.mark.slow
def test_v1_call_id_is_sent_back(emu):
    function = chat_models.Function(name="f", description="d", parameters={"type": "object", "properties": {"a": {"type": "string"}}})
    with gigachat.GigaChat(**settings(emu)) as client:
        called = client.chat(chat_models.Chat(messages=[chat_models.Messages(role="user", content="q")], functions=[function]))
        message = called.choices[0].message
        message.function_call.id_ = "call-1"  # as a server that numbers its calls would send it
        answer = client.chat(chat_models.Chat(messages=[
            chat_models.Messages(role="user", content="q"), message,
            chat_models.Messages(role="function", name="f", content=json.dumps({"r": 1}))]))
    assert called.choices[0].finish_reason == "function_call" and message.function_call.name == "f"
    assert emu.requests[-1].json["messages"][1]["function_call"]["id"] == "call-1"
    assert answer.choices[0].message.content == 'Function f returned: {"r": 1}'


@pytest.mark.slow
@pytest.mark.gigachat_emulator(call_ids="always")
def test_call_ids_always_reach_the_sdk(emu):
    function = chat_models.Function(name="f", parameters={"type": "object", "properties": {}})
    with gigachat.GigaChat(**settings(emu)) as client:
        v1_call = client.chat(chat_models.Chat(messages=[chat_models.Messages(role="user", content="q")],
                                               functions=[function])).choices[0].message.function_call
        (v2_call,) = calls(client.chat.create({"messages": [{"role": "user", "content": "get_rate"}],
                                               "tools": TOOLS}).messages[0])
    assert v1_call.id_ and v2_call.id_ and v1_call.id_ != v2_call.id_
