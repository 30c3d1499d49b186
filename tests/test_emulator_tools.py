"""The emulator's function calls (issue 22): several calls in one v2 reply, with ids,
whole and streamed in fragments; ``parallel_tool_calls``, mode ``any``; the results sent
back in one ``tool`` message or one per result, checked against the calls; v1's lone
call and its ``id``. Raw HTTP; the official SDK's view is in ``test_emulator_sdk_tools.py``.
"""

import json
from typing import Any, Dict, List

import pytest
import requests

from gigachat_lite.emulator import Emulator
from test_emulator_v2 import TIMEOUT, bearer, split_events

MODEL = "GigaChat-3-Ultra"
TOOLS = [{"functions": {"specifications": [
    {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"name": "get_rate", "parameters": {"type": "object", "properties": {"currency": {"type": "string"}}, "required": ["currency"]}},
    {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["MSK", "UTC"]}}}},
]}}]
BOTH = "What is get_rate for USD, and get_weather in Kazan?"


@pytest.fixture
def auth(emu: Emulator) -> Dict[str, str]:
    return bearer(emu)


def post(emu: Emulator, auth: Dict[str, str], body: Dict[str, Any], path: str = "/api/v2/chat/completions") -> requests.Response:
    return requests.post(emu.url + path, json=dict({"model": MODEL}, **body), headers=auth, timeout=TIMEOUT)


def user(text: str) -> List[Dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def calls_of(reply: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [part["function_call"] for part in reply["messages"][0]["content"]]


def test_two_mentioned_functions_get_two_calls_with_distinct_ids(emu, auth):
    reply = post(emu, auth, {"messages": user(BOTH), "tools": TOOLS}).json()
    assert reply["finish_reason"] == "function_call"
    calls = calls_of(reply)
    # in the order the text names them, each with its id, name and arguments
    assert [c["name"] for c in calls] == ["get_rate", "get_weather"]
    assert [list(c) for c in calls] == [["id", "name", "arguments"]] * 2
    assert calls[0]["id"] != calls[1]["id"] and all(c["id"] for c in calls)
    assert calls[0]["arguments"] == {"currency": BOTH} and calls[1]["arguments"] == {"city": BOTH}
    assert reply["messages"][0]["tool_state_id"]
    again = post(emu, auth, {"messages": user(BOTH), "tools": TOOLS}).json()
    assert [(c["name"], c["arguments"]) for c in calls_of(again)] == [(c["name"], c["arguments"]) for c in calls]
    assert {c["id"] for c in calls_of(again)}.isdisjoint(c["id"] for c in calls)  # fresh state, fresh ids


def test_parallel_tool_calls_false_and_forced_make_one_call(emu, auth):
    one = post(emu, auth, {"messages": user(BOTH), "tools": TOOLS, "model_options": {"parallel_tool_calls": False}})
    assert calls_of(one.json()) == [{"name": "get_rate", "arguments": {"currency": BOTH}}]  # a lone call: no id, as recorded
    forced = post(emu, auth, {"messages": user(BOTH), "tools": TOOLS,
                              "tool_config": {"mode": "forced", "function_name": "get_time"}})
    assert calls_of(forced.json()) == [{"name": "get_time", "arguments": {"zone": "MSK"}}]
    assert [c["name"] for c in calls_of(post(emu, auth, {"messages": user("hi"), "tools": TOOLS}).json())] == [
        "get_weather"]  # nothing named: the first function


def test_mode_any_chooses_among_functions_names_any(emu, auth):
    def names(text: str, allowed: List[str]) -> List[str]:
        body = {"messages": user(text), "tools": TOOLS, "tool_config": {"mode": "any", "functions_names_any": allowed}}
        return [c["name"] for c in calls_of(post(emu, auth, body).json())]

    assert names(BOTH, ["get_rate", "get_time"]) == ["get_rate"]  # get_weather is named but not allowed
    assert names(BOTH, ["get_weather", "get_rate"]) == ["get_rate", "get_weather"]
    assert names("nothing named", ["get_time", "get_rate"]) == ["get_rate"]  # the first allowed, in tools order


def test_streamed_calls_come_in_fragments_joined_per_id(emu, auth):
    whole = calls_of(post(emu, auth, {"messages": user(BOTH), "tools": TOOLS}).json())
    events = split_events(post(emu, auth, {"messages": user(BOTH), "tools": TOOLS, "stream": True}).content)
    assert events[-1]["event"] == "response.message.done" and events[-1]["data"]["finish_reason"] == "function_call"
    assert "usage" in events[-1]["data"]
    fragments = [e["data"]["messages"][0] for e in events[:-1]]
    assert fragments[0]["tool_state_id"] and all("tool_state_id" not in f for f in fragments[1:])
    joined: Dict[str, Dict[str, str]] = {}
    for fragment in fragments:
        (part,) = fragment["content"]
        call = part["function_call"]
        assert set(call) == {"id", "name", "arguments"} and len(call["arguments"]) <= emu.piece_size
        joined.setdefault(call["id"], {"name": call["name"], "arguments": ""})["arguments"] += call["arguments"]
    assert len(joined) == 2 and len(fragments) > 2
    assert [(c["name"], json.loads(c["arguments"])) for c in joined.values()] == [
        (c["name"], c["arguments"]) for c in whole]


def round_trip(emu: Emulator, auth: Dict[str, str], grouped: bool) -> requests.Response:
    first = post(emu, auth, {"messages": user(BOTH), "tools": TOOLS}).json()["messages"][0]
    state = first["tool_state_id"]
    assistant = {"role": "assistant", "tools_state_id": state, "content": first["content"]}
    results = [{"function_result": {"id": c["id"], "name": c["name"], "result": {"n": n}}}
               for n, c in enumerate(calls_of({"messages": [first]}))]
    tools = ([{"role": "tool", "tools_state_id": state, "content": results}] if grouped else
             [{"role": "tool", "tools_state_id": state, "content": [r]} for r in reversed(results)])
    return post(emu, auth, {"messages": user(BOTH) + [assistant] + tools, "tools": TOOLS})


@pytest.mark.parametrize("grouped", [True, False], ids=["one-tool-message", "one-message-per-result"])
def test_results_go_back_either_way(emu, auth, grouped):
    reply = round_trip(emu, auth, grouped)
    assert reply.status_code == 200, reply.text
    assert reply.json()["finish_reason"] == "stop"
    text = reply.json()["messages"][0]["content"][0]["text"]
    order = ["get_rate", "get_weather"] if grouped else ["get_weather", "get_rate"]  # as sent back
    assert text == " ".join('Function %s returned: {"n": %d}' % (name, ["get_rate", "get_weather"].index(name))
                            for name in order)


def refusal(emu: Emulator, auth: Dict[str, str], results: List[Dict[str, Any]], calls: List[Dict[str, Any]]) -> str:
    messages = user(BOTH) + [
        {"role": "assistant", "tools_state_id": "st-1", "content": [{"function_call": c} for c in calls]},
        {"role": "tool", "tools_state_id": "st-1", "content": [{"function_result": r} for r in results]},
    ]
    response = post(emu, auth, {"messages": messages, "tools": TOOLS})
    assert response.status_code == 422, response.text
    return response.json()["message"]


TWO = [{"id": "c1", "name": "get_weather", "arguments": {"city": "Kazan"}},
       {"id": "c2", "name": "get_rate", "arguments": {"currency": "USD"}}]


@pytest.mark.slow
@pytest.mark.parametrize("results, calls, named", [
    ([{"id": "c1", "name": "get_weather", "result": {}}, {"id": "c9", "name": "get_rate", "result": {}}], TWO,
     "messages[2].content[1].function_result.id 'c9' matches no function_call of messages[1]"),
    ([{"id": "c1", "name": "get_weather", "result": {}}], TWO, "the function_call 'c2' of messages[1] has no function_result"),
    ([{"id": "c1", "name": "get_weather", "result": {}}, {"id": "c1", "name": "get_weather", "result": {}}], TWO,
     "messages[2].content[1].function_result.id 'c1' answers a call already answered"),
    ([{"name": "get_weather", "result": {}}, {"id": "c2", "name": "get_rate", "result": {}}], TWO,
     "messages[2].content[0].function_result.id is required: messages[1] has 2 function calls"),
    ([{"name": "get_rate", "result": {}}], [{"name": "get_weather", "arguments": {}}],
     "messages[2].content[0].function_result.name 'get_rate' does not match the function_call 'get_weather'"),
    ([{"id": "c1", "name": "get_weather", "result": [1]}], TWO[:1], "function_result.result must be a JSON object"),
    ([{"id": 7, "name": "get_weather", "result": {}}], TWO[:1], "messages[2].content[0].function_result.id must be a string"),
], ids=["unknown-id", "missing-result", "answered-twice", "no-id-among-several", "wrong-name", "not-an-object",
        "id-not-a-string"])
def test_results_that_do_not_answer_the_calls_are_refused(emu, auth, results, calls, named):
    assert named in refusal(emu, auth, results, calls)


def test_calls_then_a_user_turn_are_refused(emu, auth):
    messages = user(BOTH) + [{"role": "assistant", "content": [{"function_call": TWO[0]}]}] + user("never mind")
    response = post(emu, auth, {"messages": messages, "tools": TOOLS})
    assert response.status_code == 422
    assert "the function_call of messages[1] needs a function_result" in response.json()["message"]


def test_a_lone_call_answered_without_id_as_recorded(emu, auth):
    lone = [{"name": "get_weather", "arguments": {"city": "Kazan"}}]
    messages = user("weather") + [
        {"role": "assistant", "tool_state_id": "st-2", "content": [{"function_call": lone[0]}]},
        {"role": "tool", "tools_state_id": "st-2", "content": [{"function_result": {"name": "get_weather", "result": {"t": 3}}}]},
    ]
    reply = post(emu, auth, {"messages": messages, "tools": TOOLS})
    assert reply.json()["messages"][0]["content"] == [{"text": 'Function get_weather returned: {"t": 3}'}]


def v1(emu: Emulator, auth: Dict[str, str], body: Dict[str, Any]) -> Dict[str, Any]:
    response = post(emu, auth, body, path="/api/v1/chat/completions")
    assert response.status_code == 200, response.text
    return response.json()


V1_FUNCTIONS = [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}]


def test_v1_lone_call_and_its_id_sent_back(emu, auth):
    reply = v1(emu, auth, {"messages": [{"role": "user", "content": "q"}], "functions": V1_FUNCTIONS})
    message = reply["choices"][0]["message"]
    assert message["function_call"] == {"name": "f", "arguments": {"a": "q"}} and message["functions_state_id"]
    # the SDK 0.2.4a1 sends a call's id back (captured request "v1 function result with id")
    history = [{"role": "user", "content": "q"},
               {"role": "assistant", "content": "", "function_call": {"id": "call-1", "name": "f", "arguments": {"a": "x"}},
                "functions_state_id": "st-1"},
               {"role": "function", "content": "{\"r\": 1}", "name": "f"}]
    answer = v1(emu, auth, {"messages": history})["choices"][0]
    assert (answer["message"]["content"], answer["finish_reason"]) == ('Function f returned: {"r": 1}', "stop")


@pytest.mark.parametrize("gigachat_emulator", [{"call_ids": "always"}], indirect=True)
def test_call_ids_always_gives_every_call_an_id(emu, auth):
    lone = calls_of(post(emu, auth, {"messages": user("get_time"), "tools": TOOLS}).json())
    assert [list(c) for c in lone] == [["id", "name", "arguments"]]
    call = v1(emu, auth, {"messages": [{"role": "user", "content": "q"}], "functions": V1_FUNCTIONS})[
        "choices"][0]["message"]["function_call"]
    assert list(call) == ["id", "name", "arguments"] and call["id"]
    events = post(emu, auth, {"messages": [{"role": "user", "content": "q"}], "functions": V1_FUNCTIONS,
                              "stream": True}, path="/api/v1/chat/completions").text
    assert '"function_call":{"id":"%s"' % call["id"] not in events  # a fresh id per reply
    assert '"function_call":{"id":' in events


def test_call_ids_setting_is_checked():
    with pytest.raises(ValueError, match="call_ids must be one of parallel, always"):
        Emulator(call_ids="sometimes")
