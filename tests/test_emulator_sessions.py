"""Issue 21 on the emulator: the prompt cache behind ``X-Session-ID``, user and password
auth (``POST {base}/token``, ``serve --user``), every path under ``/v1``, and the request
fields of SDK 0.2.4a1 (v1 reasoning and ``n``; v2 logprobs, reasoning budget, 3D models).
Raw HTTP; the official SDK's view is in ``test_emulator_sdk_today.py``.
"""

import base64
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import pytest
import requests

from gigachat_lite.emulator import Emulator
from gigachat_lite.emulator.prompt_cache import PromptCache
from gigachat_lite.emulator.users import Users
from test_emulator_v2 import TIMEOUT, bearer, split_events

USERS = {"alice": "wonder-land", "bob": "b:with:colons"}
pytestmark = pytest.mark.gigachat_emulator(users=USERS)


@pytest.fixture
def auth(emu: Emulator) -> Dict[str, str]:
    return bearer(emu)


def chat(emu: Emulator, auth: Dict[str, str], body: Dict[str, Any], session: Optional[str] = None,
         path: str = "/api/v1/chat/completions") -> Dict[str, Any]:
    headers = dict(auth, **({"X-Session-ID": session} if session else {}))
    response = requests.post(emu.url + path, json=body, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def v1(*texts: str) -> Dict[str, Any]:
    roles = ["user", "assistant"]
    return {"model": "GigaChat", "messages": [{"role": roles[n % 2], "content": t} for n, t in enumerate(texts)]}


def v2(*texts: str) -> Dict[str, Any]:
    roles = ["user", "assistant"]
    return {"model": "GigaChat-3-Ultra",
            "messages": [{"role": roles[n % 2], "content": [{"text": t}]} for n, t in enumerate(texts)]}


PROMPT = "A long system-like prompt, repeated on every call."  # 50 characters: 7 tokens of 8 (its echo too)


# -- the prompt cache ---------------------------------------------------------------------


def test_v1_reports_a_repeated_prefix_under_one_session(emu, auth):
    fresh = chat(emu, auth, v1(PROMPT), session="s-1")["usage"]
    assert fresh == {"prompt_tokens": 7, "completion_tokens": 7, "total_tokens": 14, "precached_prompt_tokens": 0}
    again = chat(emu, auth, v1(PROMPT), session="s-1")["usage"]
    # all but the last token cached, and left out of prompt and total, as the v1 reference says
    assert again == {"prompt_tokens": 1, "completion_tokens": 7, "total_tokens": 8, "precached_prompt_tokens": 6}
    assert chat(emu, auth, v1(PROMPT), session="s-2")["usage"]["precached_prompt_tokens"] == 0  # another session
    assert chat(emu, auth, v1(PROMPT))["usage"]["precached_prompt_tokens"] == 0  # no session: no cache
    # the next turn of the conversation finds the previous prompt and its reply cached
    turn = chat(emu, auth, v1(PROMPT, "Echo: " + PROMPT, "and then?"), session="s-1")["usage"]
    assert turn["precached_prompt_tokens"] == 7 + 7 and turn["prompt_tokens"] == 2


def test_v2_reports_cached_tokens_in_the_details(emu, auth):
    path = "/api/v2/chat/completions"
    chat(emu, auth, v2(PROMPT), session="s-3", path=path)
    streamed = requests.post(emu.url + path, json=dict(v2(PROMPT + " More."), stream=True), timeout=TIMEOUT,
                             headers=dict(auth, **{"X-Session-ID": "s-3"}))
    usage = split_events(streamed.content)[-1]["data"]["usage"]
    # input_tokens counts the cached part too (as recorded: 3963 input, 3710 cached)
    assert usage["input_tokens"] == usage["input_tokens_details"]["prompt_tokens"] == 7
    assert usage["input_tokens_details"]["cached_tokens"] == 6  # the 6 whole pieces the prompts share
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_the_cache_expires_after_its_lifetime():
    now = [100.0]
    cache = PromptCache(ttl=30, clock=lambda: now[0])
    prompt = ["a", "b", "c", "d"]
    cache.remember("s", prompt)
    now[0] += 29
    assert cache.lookup("s", prompt) == 3
    cache.remember("s", prompt)  # a request renews the lifetime
    now[0] += 29
    assert cache.lookup("s", prompt + ["e"]) == 4
    now[0] += 31
    assert cache.lookup("s", prompt) == 0
    assert cache.lookup(None, prompt) == 0 and "1 sessions" in repr(cache)
    cache.forget()
    assert "0 sessions" in repr(cache)


@pytest.mark.parametrize("gigachat_emulator", [{"prompt_cache_ttl": 0.0}], indirect=True)
def test_the_lifetime_is_an_emulator_setting(emu, auth):
    assert emu.prompt_cache.ttl == 0.0
    chat(emu, auth, v1(PROMPT), session="s")
    assert chat(emu, auth, v1(PROMPT), session="s")["usage"]["precached_prompt_tokens"] == 0


# -- user and password --------------------------------------------------------------------


def basic(user: str, password: str) -> Dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}


@pytest.mark.parametrize("base", ["/api/v1", "/v1"])
def test_token_for_a_configured_user(emu, base):
    before = time.time()
    response = requests.post(emu.url + base + "/token", headers=basic("bob", USERS["bob"]), timeout=TIMEOUT)
    assert response.status_code == 200 and list(response.json()) == ["tok", "exp"]
    token, expires = response.json()["tok"], response.json()["exp"]
    assert before + emu.token_ttl - 1 <= expires <= time.time() + emu.token_ttl  # seconds, as documented
    reply = chat(emu, {"Authorization": "Bearer " + token}, v1("hi"))
    assert reply["choices"][0]["message"]["content"] == "Echo: hi"
    assert emu.users.logins("bob") == 1 and emu.users.logins() == 1 and emu.oauth_calls == 0
    assert emu.ledger.key_of(token) == "user:bob"


def test_token_refusals_never_echo_the_password(emu):
    def refused(headers: Dict[str, str], body: Any = None) -> requests.Response:
        return requests.post(emu.base_url + "/token", headers=headers, data=body, timeout=TIMEOUT)

    wrong = refused(basic("alice", "guess"))
    assert (wrong.status_code, wrong.json()) == (401, {"status": 401, "message": "Unauthorized"})
    assert refused(basic("carol", "wonder-land")).status_code == 401
    assert refused({"Authorization": "Basic not-base64!"}).status_code == 401
    assert refused({"Authorization": "Bearer x"}).status_code == 401
    assert refused({}).status_code == 401
    bad_scope = refused(basic("alice", USERS["alice"]), {"scope": "NOPE"})
    assert (bad_scope.status_code, bad_scope.json()["message"]) == (400, "scope must be one of GIGACHAT_API_PERS, "
                                                                         "GIGACHAT_API_B2B, GIGACHAT_API_CORP")
    assert refused(basic("alice", USERS["alice"]), {"scope": "GIGACHAT_API_B2B"}).status_code == 200  # gigachat-java's form
    assert requests.get(emu.base_url + "/token", timeout=TIMEOUT).status_code == 405
    assert requests.post(emu.url + "/api/v2/token", headers=basic("alice", USERS["alice"]), timeout=TIMEOUT).status_code == 404
    assert emu.users.logins("alice") == 1
    assert "wonder" not in repr(emu.users) and "alice" in repr(emu.users)


def test_users_are_checked():
    assert Users().names() == () and len(Users(USERS)) == 2 and "bob" in Users(USERS)
    with pytest.raises(ValueError, match="user names must be non-empty strings without ':'"):
        Users({"a:b": "x"})
    with pytest.raises(ValueError, match="the password of user 'a' must be a non-empty string"):
        Emulator(users={"a": ""})


def exports(process: "subprocess.Popen[str]") -> Dict[str, str]:
    found: Dict[str, str] = {}
    assert process.stdout is not None
    while "GIGACHAT_AUTH_URL" not in found:
        line = process.stdout.readline()
        assert line, "serve ended early"
        name, _, value = line.strip()[len("export "):].partition("=")
        found[name] = value.strip("'")
    return found


@pytest.mark.slow
def test_serve_accepts_users(tmp_path):
    env = dict(os.environ, GIGACHAT_PASSWORD="from-env", GIGACHAT_LITE_CACHE_DIR=str(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "gigachat_lite", "serve", "--user", "alice:pw:1", "--user", "bob"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        base = exports(process)["GIGACHAT_BASE_URL"]
        assert requests.post(base + "/token", headers=basic("alice", "pw:1"), timeout=TIMEOUT).status_code == 200
        assert requests.post(base + "/token", headers=basic("bob", "from-env"), timeout=TIMEOUT).status_code == 200
        assert requests.post(base + "/token", headers=basic("bob", "pw:1"), timeout=TIMEOUT).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0 and "pw:1" not in err and "from-env" not in err
    env.pop("GIGACHAT_PASSWORD")
    usage = subprocess.run([sys.executable, "-m", "gigachat_lite", "serve", "--user", "carol"],
                           capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert usage.returncode == 2 and "expected NAME:PASSWORD, or NAME with GIGACHAT_PASSWORD set" in usage.stderr


# -- /v1 and /v2 beside /api/v1 and /api/v2 -----------------------------------------------------


def test_every_path_is_served_under_v1_too(emu, auth):
    def status(method: str, path: str, **kwargs: Any) -> List[int]:
        return [requests.request(method, emu.url + prefix + path, headers=auth, timeout=TIMEOUT, **kwargs).status_code
                for prefix in ("/api/v1", "/v1")]

    assert status("GET", "/models") == [200, 200]
    assert status("GET", "/models/GigaChat-3-Ultra") == [200, 200]
    assert status("GET", "/balance") == [200, 200]
    assert status("GET", "/files") == [200, 200]
    assert status("GET", "/assistants") == [200, 200]
    assert status("GET", "/threads") == [200, 200]
    assert status("POST", "/threads", json={}) == [200, 200]
    assert status("POST", "/chat/completions", json=v1("hi")) == [200, 200]
    assert status("POST", "/tokens/count", json={"model": "GigaChat", "input": ["a"]}) == [200, 200]
    assert status("POST", "/embeddings", json={"model": "Embeddings", "input": ["a"]}) == [200, 200]
    for prefix in ("/api/v2", "/v2"):
        assert requests.post(emu.url + prefix + "/chat/completions", json=v2("hi"), headers=auth,
                             timeout=TIMEOUT).status_code == 200


def test_todays_models_and_the_old_names(emu, auth):
    listed = [m["id"] for m in requests.get(emu.url + "/v1/models", headers=auth, timeout=TIMEOUT).json()["data"]]
    for name in ("GigaChat-3-Ultra", "GigaChat-3-Pro", "GigaChat-3-Lightning", "GigaChat", "GigaChat-Pro",
                 "GigaChat-Max", "GigaChat-2-Max", "Embeddings", "EmbeddingsGigaR"):
        assert name in listed
    assert chat(emu, auth, dict(v2("hi"), model="GigaChat-3-Ultra"), path="/v2/chat/completions")["model"] == (
        "GigaChat-3-Ultra:emulator")
    assert chat(emu, auth, dict(v1("hi"), model="GigaChat-Max"))["model"] == "GigaChat-Max:emulator"


# -- v1 fields of SDK 0.2.4a1 ----------------------------------------------------------------


def test_v1_reasoning_effort_and_budget(emu, auth):
    reply = chat(emu, auth, dict(v1("Why?"), reasoning_effort="extreme"))  # any string
    message = reply["choices"][0]["message"]
    assert list(message) == ["content", "role", "reasoning_content"]  # as fixtures/chat_completion.json
    assert message["reasoning_content"] == "Reasoning with extreme effort about: Why?"
    assert reply["usage"]["completion_tokens"] == 2 + 6  # "Echo: Why?" and the reasoning, both generated
    cut = chat(emu, auth, dict(v1("Why?"), reasoning_effort="high", reasoning_max_tokens=2))
    assert cut["choices"][0]["message"]["reasoning_content"] == "Reasoning with h"
    assert "reasoning_content" not in chat(emu, auth, dict(v1("Why?"), reasoning_effort="off"))["choices"][0]["message"]
    events = requests.post(emu.base_url + "/chat/completions", json=dict(v1("Why?"), reasoning_effort="low", stream=True),
                           headers=auth, timeout=TIMEOUT).text
    deltas = [line for line in events.splitlines() if line.startswith("data: {")]
    assert '"delta":{"reasoning_content":"Reasonin","role":"assistant"}' in deltas[0]
    assert '"content":"Echo: Wh"' in "".join(deltas)


def test_v1_n_choices_and_v2_fields_refused(emu, auth):
    reply = chat(emu, auth, dict(v1("hi"), n=3))
    assert [(c["index"], c["message"]["content"]) for c in reply["choices"]] == [(n, "Echo: hi") for n in range(3)]

    def refused(body: Dict[str, Any]) -> str:
        response = requests.post(emu.base_url + "/chat/completions", json=body, headers=auth, timeout=TIMEOUT)
        assert response.status_code == 422
        return str(response.json()["message"])

    assert refused(dict(v1("hi"), n=5)) == "n must be an integer from 1 to 4"
    assert refused(dict(v1("hi"), n=2, stream=True)) == "n > 1 is not available with stream"
    assert refused(dict(v1("hi"), reasoning_effort=3)) == "reasoning_effort must be a string"
    assert refused(dict(v1("hi"), reasoning_max_tokens=0)) == "reasoning_max_tokens must be a positive integer"
    assert refused(dict(v1("hi"), model_options={"temperature": 1})) == (
        "model_options is a v2 field (POST /api/v2/chat/completions), not v1's")
    assert refused(dict(v1("hi"), disable_filter=True)).startswith("disable_filter is a v2 field")


# -- v2 fields of SDK 0.2.4a1 ----------------------------------------------------------------


def test_v2_logprobs_whole_and_streamed(emu, auth):
    body = dict(v2("hi"), model_options={"top_logprobs": 3})
    (part,) = chat(emu, auth, body, path="/api/v2/chat/completions")["messages"][0]["content"]
    assert part["text"] == "Echo: hi" and len(part["logprobs"]) == 1  # one entry per emulated token
    entry = part["logprobs"][0]
    assert entry["chosen"]["token"] == "Echo: hi" and entry["top"][0] == entry["chosen"]
    assert [t["logprob"] for t in entry["top"]] == [-0.0625, -1.0625, -2.0625]
    assert chat(emu, auth, body, path="/api/v2/chat/completions")["messages"][0]["content"][0] == part  # stable
    long = dict(v2("a longer question"), model_options={"top_logprobs": 1}, stream=True)
    events = split_events(requests.post(emu.url + "/api/v2/chat/completions", json=long, headers=auth,
                                        timeout=TIMEOUT).content)
    pieces = [e["data"]["messages"][0]["content"][0] for e in events[:-1]]
    assert all(p["logprobs"][0]["chosen"]["token"] == p["text"] and len(p["logprobs"][0]["top"]) == 1 for p in pieces)


def test_v2_reasoning_budget_any_effort_and_off(emu, auth):
    def reasoning(options: Dict[str, Any]) -> Any:
        body = dict(v2("Why?"), model_options=options)
        return chat(emu, auth, body, path="/api/v2/chat/completions")["messages"][0].get("reasoning_content")

    assert reasoning({"reasoning": {"effort": "xhigh"}}) == "Reasoning with xhigh effort about: Why?"
    assert reasoning({"reasoning": {"effort": "medium", "max_tokens": 1}}) == "Reasonin"
    assert reasoning({"reasoning": {"effort": "off"}}) is None
    assert reasoning({"reasoning": {"max_tokens": 64}}) is None  # a budget alone asks for nothing


def test_v2_sdk_fields_pass(emu, auth):
    # the body SDK 0.2.4a1 sends for many settings (sdk-0.2.4a1-requests.json, "v2 create (many fields)")
    body = {"model_options": {"parallel_tool_calls": True, "temperature": 0.3, "reasoning": {"effort": "low", "max_tokens": 64},
                              "preset": "p1", "unnormalized_history": True, "top_logprobs": 3},
            "disable_filter": False, "extra_top": 1, "model": "GigaChat-3-Ultra",
            "messages": [{"content": [{"text": "hi"}], "role": "user"}], "storage": {},
            "tool_config": {"mode": "any", "functions_names_any": ["get_weather"]},
            "tools": [{"web_search": {}}, {"functions": {"specifications": [
                {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}}],
            "user_info": {"timezone": "Europe/Moscow"}, "flags": ["preprocess"],
            "filter_config": {"request_content": {"neuro": True}}, "ranker_options": {"enabled": True, "top_n": 3}}
    reply = chat(emu, auth, body, path="/api/v2/chat/completions")
    assert reply["finish_reason"] == "function_call" and reply["thread_id"] and reply["message_id"]
    assert reply["messages"][0]["content"][0]["function_call"]["name"] == "get_weather"


def test_v2_model_3d_generate_serves_its_file(emu, auth):
    body = dict(v2("a cube"), tools=[{"model_3d_generate": {}}])
    content = chat(emu, auth, body, path="/api/v2/chat/completions")["messages"][0]["content"]
    (file,) = content[0]["files"]
    assert (file["mime"], file["target"]) == ("model/gltf-binary", "3dmodel")
    glb = requests.get(emu.base_url + "/files/%s/content" % file["id"], headers=auth, timeout=TIMEOUT).content
    assert glb[:4] == b"glTF" and int.from_bytes(glb[8:12], "little") == len(glb)
