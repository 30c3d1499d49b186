"""The emulator's GigaChat v2 contract against the recorded GigaChat-3 traffic.

Raw HTTP only (requests, http.client): the shapes, key order and SSE framing of the
replies are compared with ``tests/data/cassettes/test_primary_*.yaml``; the official
SDK's view is in ``test_emulator_v2_sdk.py``.
"""

import http.client
import json
import re
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests

from gigachat_lite.emulator import Emulator, Fault, parse_fault

DATA = Path(__file__).parent / "data"
TIMEOUT = 10
MODEL = "GigaChat-3-Ultra"
MODELS = ["GigaChat", MODEL, ("Embeddings", "embedder")]
USER = [{"role": "user", "content": [{"text": "Count from 1 to 3"}]}]


def cassette(name: str) -> List[Dict[str, Any]]:
    """The API interactions of a cassette (the OAuth one left out)."""
    yaml = pytest.importorskip("yaml")
    with open(DATA / "cassettes" / name, encoding="utf-8") as handle:
        interactions = yaml.safe_load(handle)["interactions"]
    return [i for i in interactions if "/oauth" not in i["request"]["uri"]]


def shape(value: Any) -> Any:
    """Leaves replaced by type names; key order kept; numbered maps (sources) folded."""
    if isinstance(value, dict):
        if value and all(key.isdigit() for key in value):
            return ("<n>", sorted({repr(shape(item)) for item in value.values()}))
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def split_events(raw: bytes) -> List[Dict[str, Any]]:
    """``event:``/``data:`` pairs of a v2 stream, checking the recorded framing."""
    assert raw.endswith(b"\n\n") and b"[DONE]" not in raw
    out = []
    for block in raw[:-2].split(b"\n\n"):
        name, data = block.split(b"\n")
        assert name.startswith(b"event: ") and data.startswith(b"data: ")
        out.append({"event": name[7:].decode(), "data": json.loads(data[6:])})
    return out


pytestmark = pytest.mark.gigachat_emulator(models=MODELS)


def bearer(emu: Emulator, key: Optional[str] = None) -> Dict[str, str]:
    headers = {"Authorization": "Basic " + (key or emu.api_key), "RqUID": str(uuid.uuid4())}
    response = requests.post(emu.auth_url, headers=headers, data={"scope": "GIGACHAT_API_PERS"},
                             timeout=TIMEOUT, verify=emu.ca_bundle or True)
    return {"Authorization": "Bearer " + response.json()["access_token"]}


@pytest.fixture
def auth(emu):
    return bearer(emu)


def v2(emu: Emulator, auth: Dict[str, str], body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(emu.url + "/api/v2/chat/completions", json=body, headers=auth,
                         timeout=TIMEOUT, verify=emu.ca_bundle or True, **kwargs)


def answer(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return "".join(p.get("text", "") for p in response.json()["messages"][0]["content"])


# -- the recordings, replayed ----------------------------------------------------------


RECORDED = [
    "test_primary_chat_create_simple.yaml",
    "test_primary_achat_create_simple.yaml",
    "test_primary_chat_parse_json_schema.yaml",
    "test_primary_chat_regex_format.yaml",
    "test_primary_chat_function_tool_roundtrip.yaml",
    "test_primary_chat_builtin_tools.yaml",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", RECORDED)
def test_replies_have_the_recorded_shape(emu, auth, name):
    for interaction in cassette(name):
        request = json.loads(interaction["request"]["body"])
        real = json.loads(interaction["response"]["body"]["string"])
        response = v2(emu, auth, request)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert shape(response.json()) == shape(real), request["messages"][-1]
        # compact UTF-8 like the real bodies (their Content-Length is the compact size)
        compact = json.dumps(response.json(), separators=(",", ":"), ensure_ascii=False).encode()
        assert response.content == compact
        real_len = {k.lower(): v for k, v in interaction["response"]["headers"].items()}["content-length"]
        real_compact = json.dumps(real, separators=(",", ":"), ensure_ascii=False).encode()
        assert int(real_len[0]) == len(real_compact)
        assert response.json()["finish_reason"] == real["finish_reason"]


@pytest.mark.parametrize("name", ["test_primary_chat_stream_simple.yaml", "test_primary_achat_stream_simple.yaml"])
def test_stream_has_the_recorded_framing(emu, auth, name):
    (interaction,) = cassette(name)
    recorded = split_events(interaction["response"]["body"]["string"].encode())
    response = v2(emu, auth, json.loads(interaction["request"]["body"]))
    assert response.headers["Content-Type"] == "text/event-stream"
    ours = split_events(response.content)
    assert [e["event"] for e in recorded] == ["response.message.delta", "response.message.done"]
    assert [e["event"] for e in ours][-1] == "response.message.done"
    assert {e["event"] for e in ours[:-1]} == {"response.message.delta"}
    assert all(shape(e["data"]) == shape(recorded[0]["data"]) for e in ours[:-1])
    assert shape(ours[-1]["data"]) == shape(recorded[-1]["data"])
    text = "".join(e["data"]["messages"][0]["content"][0]["text"] for e in ours[:-1])
    assert text == "Echo: Count from 1 to 3"
    usage = ours[-1]["data"]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["output_tokens"] == len(ours) - 1  # one emulated token per piece


def test_plain_reply_and_stream_agree(emu, auth):
    plain = v2(emu, auth, {"model": MODEL, "messages": USER}).json()
    events = split_events(v2(emu, auth, {"model": MODEL, "messages": USER, "stream": True}).content)
    assert plain["usage"] == events[-1]["data"]["usage"]
    assert "tool_state_id" not in plain["messages"][0]  # no tools, no state id (as recorded)


# -- tools -----------------------------------------------------------------------------


ORDER_TOOL = {"functions": {"specifications": [
    {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"name": "get_order_status", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}, "urgent": {"type": "boolean"}},
        "required": ["order_id"]}},
]}}


def ask(text: str) -> List[Dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def test_function_round_trip(emu, auth):
    first = v2(emu, auth, {"model": MODEL, "messages": ask("Check order A-1024"), "tools": [ORDER_TOOL],
                           "tool_config": {"mode": "forced", "function_name": "get_order_status"}}).json()
    assert first["finish_reason"] == "function_call"
    reply = first["messages"][0]
    assert list(reply) == ["role", "tool_state_id", "content"]
    assert reply["content"] == [{"function_call": {"name": "get_order_status",
                                                   "arguments": {"order_id": "Check order A-1024"}}}]
    state = reply["tool_state_id"]
    follow = ask("Check order A-1024") + [
        {"role": "assistant", "tools_state_id": state, "content": reply["content"]},
        {"role": "tool", "tools_state_id": state, "content": [
            {"function_result": {"name": "get_order_status", "result": {"status": "packed"}}}]},
    ]
    second = v2(emu, auth, {"model": MODEL, "messages": follow, "tools": [ORDER_TOOL]}).json()
    assert second["finish_reason"] == "stop"
    assert second["messages"][0]["content"] == [
        {"text": 'Function get_order_status returned: {"status": "packed"}'}]
    assert second["messages"][0]["tool_state_id"] != state


def test_auto_calls_the_mentioned_function_and_none_answers(emu, auth):
    body = {"model": MODEL, "messages": ask("what is get_order_status of 7"), "tools": [ORDER_TOOL]}
    called = v2(emu, auth, body).json()["messages"][0]["content"][0]["function_call"]
    assert called["name"] == "get_order_status"
    assert v2(emu, auth, dict(body, messages=ask("hi"))).json()["messages"][0]["content"][0][
        "function_call"]["name"] == "get_weather"  # none mentioned: the first
    assert answer(v2(emu, auth, dict(body, tool_config={"mode": "none"}))) == "Echo: what is get_order_status of 7"


def test_streamed_function_call(emu, auth):
    body = {"model": MODEL, "messages": ask("order 5"), "tools": [ORDER_TOOL], "stream": True,
            "tool_config": {"mode": "forced", "function_name": "get_order_status"}}
    events = split_events(v2(emu, auth, body).content)
    assert [e["event"] for e in events[-2:]] == ["response.message.delta", "response.message.done"]
    messages = [e["data"]["messages"][0] for e in events[:-1]]
    assert list(messages[0]) == ["role", "tool_state_id", "content"]
    # the arguments' JSON text in piece_size fragments, each naming its call
    calls = [m["content"][0]["function_call"] for m in messages]
    assert {c["name"] for c in calls} == {"get_order_status"} and all("id" not in c for c in calls)
    assert len(calls) > 1 and all(len(c["arguments"]) <= emu.piece_size for c in calls)
    assert json.loads("".join(c["arguments"] for c in calls)) == {"order_id": "order 5"}
    assert events[-1]["data"]["finish_reason"] == "function_call"


def test_image_generation_serves_the_file(emu, auth):
    body = {"model": MODEL, "messages": ask("draw a square"), "tools": [{"image_generate": {}}],
            "tool_config": {"mode": "forced", "tool_name": "image_generate"}}
    content = v2(emu, auth, body).json()["messages"][0]["content"]
    (file,) = content[0]["files"]
    assert (file["mime"], file["target"]) == ("image/jpeg", "image")
    assert content[1]["text"].endswith("draw a square")
    image = requests.get(emu.base_url + "/files/%s/content" % file["id"], headers=auth, timeout=TIMEOUT)
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff" and image.content.endswith(b"\xff\xd9")


def test_each_builtin_tool_has_its_stand_in(emu, auth):
    def run(tool: str, text: str) -> Dict[str, Any]:
        body = {"model": MODEL, "messages": ask(text), "tools": [{tool: {}}], "tool_config": {"mode": "auto"}}
        return v2(emu, auth, body).json()["messages"][0]
    search = run("web_search", "python news")["content"][0]
    assert search["inline_data"]["sources"]["1"]["url"] == "https://example.com/search?q=python%20news"
    assert "[sources=[1]]" in search["text"]
    assert "https://docs.python.org/3/" in run("url_content_extraction", "Read https://docs.python.org/3/ now")[
        "content"][0]["text"]
    assert run("code_interpreter", "sum primes")["content"][0]["text"].endswith("sum primes")


def test_forced_tool_wins_over_functions(emu, auth):
    body = {"model": MODEL, "messages": ask("q"), "tools": [ORDER_TOOL, {"web_search": {}}],
            "tool_config": {"mode": "forced", "tool_name": "web_search"}}
    assert "inline_data" in v2(emu, auth, body).json()["messages"][0]["content"][0]


# -- structured output and reasoning ---------------------------------------------------


SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "minLength": 6},
        "n": {"type": "integer", "minimum": 3, "maximum": 10},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "minItems": 2},
        "kind": {"enum": ["x", "y"]},
        "maybe": {"anyOf": [{"type": "null"}, {"type": "number"}]},
    },
    "required": ["answer", "n", "tags", "kind"],
    "$defs": {"Tag": {"type": "object", "properties": {"name": {"type": "string"}, "on": {"type": "boolean"}}}},
}


def test_json_schema_reply_honours_the_schema(emu, auth):
    body = {"model": MODEL, "messages": ask("give"),
            "model_options": {"response_format": {"type": "json_schema", "schema": SCHEMA, "strict": True}}}
    text = answer(v2(emu, auth, body))
    value = json.loads(text)
    assert text.startswith("{\n    ")  # indented like the recorded reply
    assert set(SCHEMA["required"]) <= set(value)
    assert isinstance(value["answer"], str) and len(value["answer"]) >= 6
    assert value["n"] == 3 and value["kind"] == "x" and isinstance(value["maybe"], float)
    assert len(value["tags"]) == 2 and value["tags"][0] == {"name": "text", "on": True}
    assert answer(v2(emu, auth, body)) == text  # deterministic
    as_text = dict(body, model_options={"response_format": {"type": "json_schema", "schema": json.dumps(SCHEMA)}})
    assert answer(v2(emu, auth, as_text)) == text  # the SDK may send the schema as JSON text


@pytest.mark.slow
@pytest.mark.parametrize("pattern", [r"[A-Z]{3}-\d{4}", r"(yes|no)", r"\w+@\w+\.com", r"[^abc]{2}x?",
                                     r"(ab)\1-[а-я]{2}", r"\d{2,}(\.\d+)?%"])
def test_regex_reply_matches(emu, auth, pattern):
    body = {"model": MODEL, "messages": ask("code"),
            "model_options": {"response_format": {"type": "regex", "regex": pattern}}}
    assert re.fullmatch(pattern, answer(v2(emu, auth, body)))


def test_regex_out_of_reach_answers_plain_text(emu, auth):
    body = {"model": MODEL, "messages": ask("code"),
            "model_options": {"response_format": {"type": "regex", "regex": r"(?=x)x"}}}
    assert answer(v2(emu, auth, body)) == "Echo: code"


def test_reasoning_is_kept_apart_from_the_answer(emu, auth):
    body = {"model": MODEL, "messages": USER, "model_options": {"reasoning": {"effort": "high"}}}
    message = v2(emu, auth, body).json()["messages"][0]
    assert list(message) == ["role", "reasoning_content", "content"]
    assert message["reasoning_content"] == "Reasoning with high effort about: Count from 1 to 3"
    assert message["content"] == [{"text": "Echo: Count from 1 to 3"}]
    events = split_events(v2(emu, auth, dict(body, stream=True)).content)
    fragments = [e["data"]["messages"][0] for e in events[:-1]]
    thinking = [f for f in fragments if "reasoning_content" in f]
    assert fragments[: len(thinking)] == thinking  # reasoning streams first
    assert all("content" not in f for f in thinking)
    assert "".join(f["reasoning_content"] for f in thinking) == message["reasoning_content"]
    assert "".join(f["content"][0]["text"] for f in fragments[len(thinking):]) == "Echo: Count from 1 to 3"


def test_max_tokens_cuts_with_length(emu, auth):
    body = {"model": MODEL, "messages": USER, "model_options": {"max_tokens": 1}}
    reply = v2(emu, auth, body).json()
    assert reply["finish_reason"] == "length" and answer(v2(emu, auth, body)) == "Echo: Co"


# -- bad input ---------------------------------------------------------------------------


BAD = [
    ({"messages": [{"role": "user", "content": "text"}]}, "messages[0].content must be a list of parts"),
    ({"messages": [{"role": "user", "content": [{"text": "a"}, {"image": "x"}]}]}, "messages[0].content[1]: unknown part 'image'"),
    ({"messages": [{"role": "function", "content": []}]}, "messages[0].role"),
    ({"messages": []}, "messages must be a non-empty list"),
    ({"messages": [{"role": "user", "content": [{"text": 1}]}]}, "messages[0].content[0].text"),
    ({"messages": [{"role": "user", "content": [{"files": [{"name": "x"}]}]}]}, "messages[0].content[0].files"),
    ({"messages": USER, "tools": [{"dance": {}}]}, "tools[0]: unknown tool 'dance'"),
    ({"messages": USER, "tools": [{"web_search": {}, "image_generate": {}}]}, "tools[0] must be an object with exactly one key"),
    ({"messages": USER, "tools": [{"web_search": {}}], "tool_config": {"mode": "forced", "tool_name": "image_generate"}},
     "tool_config.tool_name 'image_generate'"),
    ({"messages": USER, "tool_config": {"mode": "sometimes"}}, "tool_config.mode"),
    ({"messages": USER, "model_options": {"reasoning": {"effort": ""}}}, "model_options.reasoning.effort"),
    ({"messages": USER, "model_options": {"reasoning": {"effort": "low", "max_tokens": 0}}},
     "model_options.reasoning.max_tokens must be a positive integer"),
    ({"messages": USER, "model_options": {"top_logprobs": 6}}, "model_options.top_logprobs must be an integer from 1 to 5"),
    ({"messages": USER, "model_options": {"parallel_tool_calls": "yes"}}, "model_options.parallel_tool_calls must be a boolean"),
    ({"messages": USER, "model_options": {"preset": 1}}, "model_options.preset must be a string"),
    # what the SDK moves or renames is refused where a client left it (the service would ignore it)
    ({"messages": USER, "temperature": 0.3}, "temperature belongs in model_options on v2"),
    ({"messages": USER, "parallel_tool_calls": True}, "parallel_tool_calls belongs in model_options on v2"),
    ({"messages": USER, "profanity_check": True}, "profanity_check is v1's; v2 takes disable_filter"),
    ({"messages": USER, "reasoning_effort": "low"}, "reasoning_effort is v1's; v2 takes model_options.reasoning.effort"),
    ({"messages": USER, "functions": []}, "functions is v1's"),
    ({"messages": USER, "storage": True}, "storage must be an object (storage=true is sent as {})"),
    ({"messages": USER, "storage": {"limit": 0}}, "storage.limit must be a positive integer"),
    ({"messages": USER, "disable_filter": "no"}, "disable_filter must be a boolean"),
    ({"messages": USER, "flags": "preprocess"}, "flags must be a list of strings"),
    ({"messages": USER, "user_info": {"timezone": 3}}, "user_info.timezone must be a string"),
    ({"messages": USER, "tool_config": {"mode": "any"}}, "tool_config with mode any needs a functions tool"),
    ({"messages": USER, "tools": [ORDER_TOOL], "tool_config": {"mode": "any", "functions_names_any": ["nope"]}},
     "tool_config.functions_names_any: 'nope' is not among the request's functions"),
    ({"messages": USER, "tools": [ORDER_TOOL], "tool_config": {"mode": "auto", "functions_names_any": ["get_weather"]}},
     "tool_config.functions_names_any needs mode any"),
    ({"messages": USER + [{"role": "tool", "content": [{"function_result": {"name": "f", "result": "ok"}}]}]},
     "messages[1].content[0].function_result.result must be a JSON object"),
    ({"messages": USER, "model_options": {"response_format": {"type": "regex", "regex": "("}}}, "response_format.regex"),
    ({"messages": USER, "model_options": {"response_format": {"type": "xml"}}}, "response_format.type"),
    ({"messages": USER, "model_options": {"max_tokens": 0}}, "model_options.max_tokens"),
    ({"messages": USER, "stream": "yes"}, "stream must be a boolean"),
]


@pytest.mark.slow
@pytest.mark.parametrize("body, named", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_input_is_422_naming_the_item(emu, auth, body, named):
    response = v2(emu, auth, dict(body, model=MODEL))
    assert response.status_code == 422
    error = response.json()
    assert list(error) == ["status", "message"] and error["status"] == 422
    assert named in error["message"]
    assert response.content.endswith(b"}\n")  # the real error bodies' trailing newline


def test_other_bad_requests(emu, auth):
    raw = requests.post(emu.url + "/api/v2/chat/completions", data=b"{nope", headers=auth, timeout=TIMEOUT)
    assert (raw.status_code, raw.json()) == (400, {"status": 400, "message": "Invalid JSON"})
    assert v2(emu, auth, {"model": "Nope", "messages": USER}).status_code == 404
    assert v2(emu, {"Authorization": "Bearer nope"}, {"model": MODEL, "messages": USER}).status_code == 401
    assert requests.post(emu.url + "/v2/chat/completions", json={"model": MODEL, "messages": USER},
                         headers=auth, timeout=TIMEOUT).status_code == 200  # the api.giga.chat layout


# -- faults on the v2 path ---------------------------------------------------------------


def raw_v2_stream(emu: Emulator, auth: Dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", int(emu.url.rsplit(":", 1)[1]), timeout=TIMEOUT)
    body = json.dumps({"model": MODEL, "messages": USER, "stream": True}).encode()
    conn.request("POST", "/api/v2/chat/completions", body, {"Content-Type": "application/json", **auth})
    return conn.getresponse()


def test_status_fault_on_v2(emu, auth):
    emu.add_fault(Fault(path="v2/chat/completions", status=429, retry_after="3", times=1))
    first = v2(emu, auth, {"model": MODEL, "messages": USER})
    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    assert first.json() == {"status": 429, "message": "Too Many Requests"}
    assert v2(emu, auth, {"model": MODEL, "messages": USER}).status_code == 200


def test_chat_fault_target_covers_v2(emu, auth):
    emu.add_fault(parse_fault("chat:503:times=1"))
    assert v2(emu, auth, {"model": MODEL, "messages": USER}).status_code == 503


def test_cut_stream_on_v2(emu, auth):
    emu.add_fault(Fault(path="chat/completions", cut_after=2))
    response = raw_v2_stream(emu, auth)
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    events = split_events(cut.value.partial)
    assert len(events) == 2 and events[-1]["event"] == "response.message.delta"


def test_stream_error_and_malformed_are_named_events_on_v2(emu, auth):
    emu.add_fault(Fault(path="chat/completions", stream_error_after=1, status=500, times=1))
    raw = v2(emu, auth, {"model": MODEL, "messages": USER, "stream": True}).content
    assert raw.endswith(b'event: error\ndata: {"status":500,"message":"Internal Server Error"}\n\n')
    assert raw.count(b"event: ") == 2  # one delta, then the error; no done
    emu.add_fault(Fault(path="chat/completions", malformed_after=1, times=1))
    raw = v2(emu, auth, {"model": MODEL, "messages": USER, "stream": True}).content
    assert b"event: response.message.delta\ndata: {not json\n\n" in raw
    assert raw.endswith(b"\n\n") and b"response.message.done" in raw


@pytest.mark.slow
def test_reset_and_stall_on_v2(emu):
    auth = bearer(emu)
    emu.add_fault(Fault(path="v2/chat", reset=True, times=1))
    with pytest.raises(requests.ConnectionError):
        v2(emu, auth, {"model": MODEL, "messages": USER})
    emu.add_fault(Fault(path="v2/chat", stall=2.0, times=1))
    with pytest.raises(requests.Timeout):
        requests.post(emu.url + "/api/v2/chat/completions", json={"model": MODEL, "messages": USER},
                      headers=auth, timeout=0.5)


# -- ai/check and functions/convert ------------------------------------------------------


def fixture(name: str) -> Any:
    return json.loads((DATA / "fixtures" / name).read_text(encoding="utf-8"))


def test_ai_check_shape_and_rule(emu, auth):
    real = fixture("ai_check.json")
    long = "This sentence is long enough, at a hundred characters or more, to count as machine-written text here, surely."
    assert len(long) >= 100
    text = "Hi there. " + long + " Ok. " + long
    response = requests.post(emu.base_url + "/ai/check", json={"input": text, "model": "GigaCheckDetection"},
                             headers=auth, timeout=TIMEOUT)
    body = response.json()
    assert shape(body) == shape(real) and list(body) == list(real)
    assert body["category"] == "mixed" and body["characters"] == len(text)
    assert body["ai_intervals"] == [[10, 10 + len(long)], [15 + len(long), len(text)]]
    merged = requests.post(emu.base_url + "/ai/check", json={"input": long + " " + long + " Ok."},
                           headers=auth, timeout=TIMEOUT).json()
    assert merged["ai_intervals"] == [[0, 2 * len(long) + 1]]  # adjacent sentences make one run
    for sample, category in (("Short one. Another.", "human"), (long, "ai")):
        result = requests.post(emu.base_url + "/ai/check", json={"input": sample, "model": "m"},
                               headers=auth, timeout=TIMEOUT).json()
        assert result["category"] == category
    bad = requests.post(emu.base_url + "/ai/check", json={"input": ""}, headers=auth, timeout=TIMEOUT)
    assert bad.status_code == 422 and "input" in bad.json()["message"]


OPENAPI = {
    "openapi": "3.0.0",
    "paths": {"/sms/{version}": {
        "parameters": [{"name": "version", "in": "path", "required": True, "description": "API version",
                        "schema": {"type": "string"}}],
        "post": {
            "operationId": "send_sms",
            "description": "Send an SMS to an employee",
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Sms"}}}},
            "responses": {"200": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"status": {"type": "boolean"}}}}}}},
            "x-few-shot-examples": [{"request": "send hello to 1", "params": {"employeeId": 1, "text": "hello"}}],
        }}},
    "components": {"schemas": {"Sms": {"type": "object", "required": ["employeeId", "text"], "properties": {
        "employeeId": {"type": "integer", "format": "int32"}, "text": {"type": "string", "minLength": 1}}}}},
}


def test_functions_convert_shape(emu, auth):
    real = fixture("convert_functions.json")["functions"][0]
    response = requests.post(emu.base_url + "/functions/convert", data=json.dumps(OPENAPI), headers=auth,
                             timeout=TIMEOUT)
    (function,) = response.json()["functions"]
    assert set(function) == set(real)
    assert function["name"] == "send_sms"
    assert function["parameters"]["required"] == ["version", "employeeId", "text"]
    assert function["parameters"]["properties"]["version"] == {"description": "API version", "type": "string"}
    assert function["parameters"]["properties"]["employeeId"] == {"type": "integer", "format": "int32"}
    assert function["return_parameters"]["properties"]["status"] == {"type": "boolean"}
    yaml_text = requests.post(emu.base_url + "/functions/convert", data="openapi: 3.0.0", headers=auth,
                              timeout=TIMEOUT)
    assert yaml_text.status_code == 422 and "JSON" in yaml_text.json()["message"]
