"""Tests of the local GigaChat emulator, driven with plain ``requests`` / ``http.client``.

The emulator is checked against the recorded real traffic in ``tests/data`` so that a
client that passes against it also parses the real service.
"""

import base64
import http.client
import json
import logging
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from gigachat_lite.emulator import DEFAULT_KEY, Emulator, Fault, parse_fault
from gigachat_lite.emulator import replies

from reliability_support import wait_for

DATA = Path(__file__).parent / "data"
USER = [{"role": "user", "content": "hi"}]
TIMEOUT = 10  # hang guard for every request


# -- helpers ---------------------------------------------------------------------------


def cassette(name: str) -> List[Dict[str, Any]]:
    yaml = pytest.importorskip("yaml")
    with open(DATA / "cassettes" / name, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["interactions"]


def api_response(name: str) -> Dict[str, Any]:
    """The response of the last (API) interaction of a cassette."""
    return cassette(name)[-1]["response"]


def shape(value: Any) -> Any:
    """The value with leaves replaced by type names; dict key order is kept."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def oauth(emu: Emulator, key: Optional[str] = None, **overrides: Any) -> requests.Response:
    headers = {"Authorization": "Basic " + (key or emu.api_key), "RqUID": str(uuid.uuid4())}
    headers.update(overrides.pop("headers", {}))
    data = overrides.pop("data", {"scope": "GIGACHAT_API_PERS"})
    return requests.post(emu.auth_url, headers=headers, data=data, timeout=TIMEOUT,
                         verify=emu.ca_bundle or True)


def port(emu: Emulator) -> int:
    """The port the emulator listens on."""
    return int(emu.url.rsplit(":", 1)[1])


def token(emu: Emulator) -> str:
    response = oauth(emu)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(emu: Emulator) -> Dict[str, str]:
    return {"Authorization": "Bearer " + token(emu)}


def chat(emu: Emulator, body: Any, headers: Optional[Dict[str, str]] = None,
         session: Any = requests) -> requests.Response:
    # verify= explicitly: REQUESTS_CA_BUNDLE would override a Session's own verify
    return session.post(emu.base_url + "/chat/completions", json=body,
                        headers=headers or bearer(emu), timeout=TIMEOUT,
                        verify=emu.ca_bundle or True)


def events(raw: bytes) -> List[bytes]:
    """Split an SSE body on the blank line, checking it ends with one."""
    assert raw.endswith(b"\n\n"), raw[-40:]
    return raw[:-2].split(b"\n\n")


def event_json(event: bytes) -> Any:
    assert event.startswith(b"data: ")
    return json.loads(event[len(b"data: "):])


def raw_stream(emu: Emulator, auth: Dict[str, str], body: Dict[str, Any]):
    """POST a stream with http.client and return the open response."""
    conn = http.client.HTTPConnection("127.0.0.1", port(emu), timeout=TIMEOUT)
    payload = json.dumps(dict(body, stream=True)).encode()
    conn.request("POST", "/api/v1/chat/completions", payload,
                 {"Content-Type": "application/json", **auth})
    return conn, conn.getresponse()




@pytest.fixture
def auth(emu):
    return bearer(emu)


def stream_body(emu: Emulator, auth: Dict[str, str], **extra: Any) -> bytes:
    response = chat(emu, dict({"model": "GigaChat", "messages": USER, "stream": True}, **extra), auth)
    assert response.status_code == 200, response.text
    return response.content


# -- configuration ---------------------------------------------------------------------


def test_addresses_and_client_settings(emu):
    assert emu.url.startswith("http://127.0.0.1:")
    assert emu.base_url == emu.url + "/api/v1"
    assert emu.auth_url == emu.url + "/api/v2/oauth"
    assert emu.ca_bundle is None
    assert emu.api_key == DEFAULT_KEY
    assert base64.b64decode(DEFAULT_KEY) == b"emulator-client-id:emulator-secret"
    assert emu.client_config() == {
        "api_key": DEFAULT_KEY, "base_url": emu.base_url, "auth_url": emu.auth_url,
    }
    assert emu.env() == {
        "GIGACHAT_CREDENTIALS": DEFAULT_KEY,
        "GIGACHAT_BASE_URL": emu.base_url,
        "GIGACHAT_AUTH_URL": emu.auth_url,
    }


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.1", "example.com", "::"])
def test_refuses_non_loopback_hosts(host):
    with pytest.raises(ValueError, match="loopback"):
        Emulator(host=host)


@pytest.mark.parametrize("kwargs", [{"keys": ()}, {"keys": "one-key"}, {"keys": ("",)},
                                    {"piece_size": 0}])
def test_refuses_bad_settings(kwargs):
    with pytest.raises(ValueError):
        Emulator(**kwargs)


def test_not_started_has_no_url():
    with pytest.raises(RuntimeError, match="start"):
        Emulator().url


def test_start_and_stop_are_idempotent():
    emulator = Emulator()
    emulator.stop()
    assert emulator.start() is emulator.start()
    port = emulator.url
    emulator.stop()
    emulator.stop()
    assert emulator.url == port
    with pytest.raises(requests.ConnectionError):
        requests.get(emulator.base_url + "/models", timeout=TIMEOUT)


def test_pytest_fixture_serves(gigachat_emulator):
    response = oauth(gigachat_emulator)
    assert response.status_code == 200
    assert gigachat_emulator.oauth_calls == 1


# -- OAuth -----------------------------------------------------------------------------


def test_oauth_issues_token(emu):
    before = time.time()
    response = oauth(emu)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"  # as recorded
    uuid.UUID(response.headers["X-Request-Id"])
    uuid.UUID(response.headers["X-Session-Id"])
    body = response.json()
    assert list(body) == ["access_token", "expires_at"]
    assert before + 1800 - 5 <= body["expires_at"] / 1000 <= time.time() + 1800 + 5
    assert emu.oauth_calls == 1
    assert token(emu) != body["access_token"]
    assert emu.oauth_calls == 2


@pytest.mark.parametrize("scope", ["GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP"])
def test_oauth_accepts_every_scope(emu, scope):
    assert oauth(emu, data={"scope": scope}).status_code == 200


@pytest.mark.gigachat_emulator(keys=("first", "second"))
def test_oauth_accepts_any_configured_key(emu):
    assert emu.api_key == "first"
    assert oauth(emu, key="second").status_code == 200


@pytest.mark.parametrize(
    "change, status, body",
    [
        ({"key": "d3Jvbmc6a2V5"}, 401, {"code": 6, "message": "credentials doesn't match db data"}),
        ({"headers": {"Authorization": ""}}, 401,
         {"code": 6, "message": "credentials doesn't match db data"}),
        ({"headers": {"RqUID": "not-a-uuid"}}, 400,
         {"code": 5, "message": "RqUID header is missing or not a UUID"}),
        ({"data": {"scope": "GIGACHAT_API_WHATEVER"}}, 400,
         {"code": 7, "message": "scope from db not fully includes consumed scope"}),
        ({"data": {}}, 400, {"code": 7, "message": "scope from db not fully includes consumed scope"}),
    ],
)
def test_oauth_failures(emu, change, status, body):
    response = oauth(emu, **change)
    assert response.status_code == status
    assert response.json() == body
    assert list(response.json()) == ["code", "message"]


def test_oauth_needs_post(emu):
    response = requests.get(emu.auth_url, timeout=TIMEOUT)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


@pytest.mark.gigachat_emulator(token_ttl=-1)  # already expired when issued
def test_expired_token_is_refused(emu):
    response = chat(emu, {"messages": USER})
    assert response.status_code == 401
    assert response.content == b'{"status":401,"message":"Token has expired"}\n'
    emu.token_ttl = 1800
    assert chat(emu, {"messages": USER}).status_code == 200


@pytest.mark.slow
@pytest.mark.gigachat_emulator(token_ttl=0.05)
def test_short_lived_token_expires(emu):
    auth = bearer(emu)
    time.sleep(0.2)  # only lets the token's lifetime pass: no thread to race
    assert chat(emu, {"messages": USER}, auth).status_code == 401


def test_revoke_tokens(emu, auth):
    assert chat(emu, {"messages": USER}, auth).status_code == 200
    emu.revoke_tokens()
    response = chat(emu, {"messages": USER}, auth)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "Token has expired"}
    assert chat(emu, {"messages": USER}).status_code == 200  # a fresh token works


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic " + DEFAULT_KEY, "Bearer"])
def test_api_refuses_bad_bearer(emu, header):
    headers = {"Authorization": header} if header else {}
    response = requests.get(emu.base_url + "/models", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "Token has expired"}


# -- chat --------------------------------------------------------------------------------


def test_chat_reply(emu, auth):
    response = chat(emu, {"model": "GigaChat-Pro", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "Привет, мир!"},
    ]}, auth)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert "Привет".encode() in response.content  # raw UTF-8, no \u escapes
    body = response.json()
    assert body["choices"] == [{
        "message": {"content": "Echo: Привет, мир!", "role": "assistant"},
        "index": 0, "finish_reason": "stop",
    }]
    assert body["model"] == "GigaChat-Pro:emulator"
    assert body["object"] == "chat.completion"
    # one token per 8 characters: "be brief" 1, "Привет, мир!" 2, reply (18 chars) 3
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6,
                             "precached_prompt_tokens": 0}
    assert abs(body["created"] - time.time()) < 60
    recorded = emu.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/api/v1/chat/completions")
    assert recorded.json["model"] == "GigaChat-Pro"
    assert recorded.headers["authorization"] == auth["Authorization"]


def test_chat_defaults_to_gigachat_model(emu, auth):
    assert chat(emu, {"messages": USER}, auth).json()["model"] == "GigaChat:emulator"


def test_fixed_and_callable_replies(emu, auth):
    emu.set_reply("fixed text")
    assert chat(emu, {"messages": USER}, auth).json()["choices"][0]["message"]["content"] == "fixed text"
    seen = []
    emu.set_reply(lambda request: seen.append(request) or request["messages"][0]["content"].upper())
    body = chat(emu, {"messages": USER, "temperature": 0.5}, auth).json()
    assert body["choices"][0]["message"]["content"] == "HI"
    assert seen == [{"messages": USER, "temperature": 0.5}]
    emu.set_reply(lambda request: 1 / 0)
    response = chat(emu, {"messages": USER}, auth)
    assert response.status_code == 500
    assert response.json() == {"status": 500, "message": "Internal Server Error"}


def test_max_tokens_truncates_with_length(emu, auth):
    emu.set_reply("a" * 30)  # 4 tokens of 8 characters
    body = chat(emu, {"messages": USER, "max_tokens": 2}, auth).json()
    assert body["choices"][0]["message"]["content"] == "a" * 16
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2
    body = chat(emu, {"messages": USER, "max_tokens": 4}, auth).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    last = event_json(events(stream_body(emu, auth, max_tokens=3))[-2])
    assert last["choices"][0]["finish_reason"] == "length"
    assert last["usage"]["completion_tokens"] == 3


def test_unknown_model_matches_recorded_404(emu, auth):
    recorded = api_response("test_chat_model_not_found.yaml")
    response = chat(emu, {"model": "NonExistentModel", "messages": USER}, auth)
    assert response.status_code == recorded["status"]["code"] == 404
    assert response.json() == json.loads(recorded["body"]["string"])
    assert response.content == b'{"status":404,"message":"No such model"}\n'
    assert len(response.content) == int(recorded["headers"]["Content-Length"][0])
    assert response.headers["Content-Type"] == recorded["headers"]["Content-Type"][0]


@pytest.mark.parametrize("model", ["Embeddings", 42])
def test_chat_refuses_non_chat_models(emu, auth, model):
    assert chat(emu, {"model": model, "messages": USER}, auth).status_code in (404, 422)


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": []},
        {"messages": "hi"},
        {"messages": ["hi"]},
        {"messages": [{"role": "bot", "content": "hi"}]},
        {"messages": [{"content": "hi"}]},
        {"messages": [{"role": "user", "content": 1}]},
        {"messages": [{"role": "user"}]},
        {"messages": USER, "stream": "yes"},
        {"messages": USER, "max_tokens": 0},
        {"messages": USER, "max_tokens": True},
        [USER],
    ],
)
def test_chat_invalid_params_are_422(emu, auth, body):
    response = chat(emu, body, auth)
    assert response.status_code == 422
    assert list(response.json()) == ["status", "message"]
    assert response.json()["status"] == 422


def test_function_call_turn_without_content_is_valid(emu, auth):
    messages = USER + [{"role": "assistant", "function_call": {"name": "f", "arguments": {}}},
                       {"role": "function", "name": "f", "content": "{}"}]
    assert chat(emu, {"messages": messages}, auth).status_code == 200


def test_invalid_json_is_400(emu, auth):
    response = requests.post(emu.base_url + "/chat/completions", data=b"{nope",
                             headers=auth, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json() == {"status": 400, "message": "Invalid JSON"}


def test_stream(emu, auth):
    emu.set_reply("Раз, два, три: поехали!")  # 23 characters -> 3 pieces
    response = chat(emu, {"messages": USER, "stream": True}, auth)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers
    parts = events(response.content)
    assert parts[-1] == b"data: [DONE]"
    chunks = [event_json(part) for part in parts[:-1]]
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas == [
        {"content": "Раз, два", "role": "assistant"},
        {"content": ", три: п"},
        {"content": "оехали!"},
        {"content": ""},
    ]
    assert [c["choices"][0].get("finish_reason") for c in chunks] == [None, None, None, "stop"]
    assert ["usage" in chunk for chunk in chunks] == [False, False, False, True]
    assert chunks[-1]["usage"] == {"prompt_tokens": 1, "completion_tokens": 3,
                                   "total_tokens": 4, "precached_prompt_tokens": 0}
    assert {chunk["created"] for chunk in chunks} == {chunks[0]["created"]}
    assert {chunk["object"] for chunk in chunks} == {"chat.completion"}


def test_stream_of_empty_reply(emu, auth):
    emu.set_reply("")
    parts = events(stream_body(emu, auth))
    assert [event_json(p)["choices"][0]["delta"] for p in parts[:-1]] == [
        {"content": "", "role": "assistant"}, {"content": ""}]


@pytest.mark.slow
@pytest.mark.gigachat_emulator(delay=0.05, reply="x" * 24)
def test_stream_delay_between_events(emu):
    started = time.monotonic()
    parts = events(stream_body(emu, bearer(emu)))
    assert len(parts) == 5
    assert time.monotonic() - started >= 0.05 * 3  # a lower bound only: a busy machine only adds


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=60), piece_size=st.integers(1, 10))
def test_stream_pieces_rebuild_the_reply(text, piece_size):
    usage = replies.usage({"messages": USER}, text, piece_size)
    chunks = [json.loads(e[6:]) for e in
              replies.stream_events(text, "stop", "m", 1, usage, piece_size)]
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == text
    assert all(len(c["choices"][0]["delta"]["content"]) <= piece_size for c in chunks)
    assert len(chunks) - 1 == max(1, usage["completion_tokens"])


# -- byte compatibility with the recorded traffic ----------------------------------------


@pytest.mark.parametrize("name", ["test_stream_simple.yaml", "test_astream_simple.yaml"])
def test_stream_framing_matches_recording(emu, auth, name):
    recorded = api_response(name)
    real = recorded["body"]["string"].encode("utf-8")
    emu.set_reply("$1\\, 2\\, 3$  \n\n**Подробный разбор:**\n- Начинаем счёт с единицы.")
    ours = stream_body(emu, auth)
    for body in (real, ours):
        parts = events(body)
        assert parts[-1] == b"data: [DONE]"
        assert all(part.startswith(b"data: {") for part in parts[:-1])
        assert b"\r" not in body and b"\n\n\n" not in body
        # compact JSON, as the real stream sends it
        assert all(b'": ' not in part and b'", "' not in part for part in parts[:-1])
    real_chunks = [event_json(p) for p in events(real)[:-1]]
    our_chunks = [event_json(p) for p in events(ours)[:-1]]
    assert shape(our_chunks[0]) == shape(real_chunks[0])  # delta content + role
    assert shape(our_chunks[-1]) == shape(real_chunks[-1])  # finish_reason + usage
    if len(real_chunks) > 2:
        assert shape(our_chunks[1]) == shape(real_chunks[1])
    assert our_chunks[-1]["object"] == real_chunks[-1]["object"] == "chat.completion"
    assert our_chunks[-1]["choices"][0]["finish_reason"] == real_chunks[-1]["choices"][0]["finish_reason"]
    assert response_headers_match(recorded, chat(emu, {"messages": USER, "stream": True}, auth))


def response_headers_match(recorded: Dict[str, Any], response: requests.Response) -> bool:
    for name in ("Content-Type", "Transfer-Encoding"):
        assert response.headers[name] == recorded["headers"][name][0], name
    uuid.UUID(response.headers["X-Request-Id"])
    uuid.UUID(response.headers["X-Session-Id"])
    return True


def test_chat_body_matches_recording(emu, auth):
    recorded = api_response("test_chat_simple.yaml")
    real = json.loads(recorded["body"]["string"])
    emu.set_reply("Hello.")
    response = chat(emu, {"messages": USER}, auth)
    assert shape(response.json()) == shape(real)
    # The recorded Content-Length proves the real body is compact JSON.
    assert int(recorded["headers"]["Content-Length"][0]) == len(replies.dumps(real))
    assert response.content == replies.dumps(response.json())
    assert response.headers["Content-Type"] == recorded["headers"]["Content-Type"][0]


def test_stream_fixture_layout_matches(emu, auth):
    text = (DATA / "fixtures" / "chat_completion.stream").read_text(encoding="utf-8")
    real = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    ours = [event_json(p) for p in events(stream_body(emu, auth))[:-1]]
    assert shape(ours[0]) == shape(real[0])
    # the older fixture has no usage and another key order in its last chunk; compare sets
    assert set(ours[-1]["choices"][0]) == set(real[-1]["choices"][0])


def test_models_match_recording(emu, auth):
    real = json.loads(api_response("test_get_models.yaml")["body"]["string"])
    response = requests.get(emu.base_url + "/models", headers=auth, timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == list(real) == ["object", "data"]
    assert all(shape(entry) == shape(real["data"][0]) for entry in body["data"])
    # today's list: the recorded one, in its order, plus the GigaChat-3 family
    served = [(m["id"], m["type"]) for m in body["data"]]
    assert [m for m in served if not m[0].startswith("GigaChat-3-")] == [(m["id"], m["type"]) for m in real["data"]]
    assert [m for m in served if m[0].startswith("GigaChat-3-")] == [
        ("GigaChat-3-Lightning", "chat"), ("GigaChat-3-Pro", "chat"), ("GigaChat-3-Ultra", "chat")]


def test_get_model_matches_recording(emu, auth):
    recorded = api_response("test_get_model.yaml")
    response = requests.get(emu.base_url + "/models/GigaChat", headers=auth, timeout=TIMEOUT)
    assert response.content == replies.dumps(json.loads(recorded["body"]["string"]))
    assert len(response.content) == int(recorded["headers"]["Content-Length"][0])
    missing = api_response("test_get_model_not_found.yaml")
    response = requests.get(emu.base_url + "/models/NonExistentModel", headers=auth, timeout=TIMEOUT)
    assert response.status_code == 404
    assert len(response.content) == int(missing["headers"]["Content-Length"][0])


@pytest.mark.gigachat_emulator(models=["Only", ("Vec", "embedder")])
def test_custom_models(emu):
    auth = bearer(emu)
    body = requests.get(emu.base_url + "/models", headers=auth, timeout=TIMEOUT).json()
    assert [(m["id"], m["type"]) for m in body["data"]] == [("Only", "chat"), ("Vec", "embedder")]
    assert chat(emu, {"model": "GigaChat", "messages": USER}, auth).status_code == 404
    assert chat(emu, {"model": "Only", "messages": USER}, auth).status_code == 200


def test_tokens_count_and_embeddings_shapes(emu, auth):
    real = json.loads(api_response("test_tokens_count_multiple.yaml")["body"]["string"])
    response = requests.post(emu.base_url + "/tokens/count", headers=auth, timeout=TIMEOUT,
                             json={"model": "GigaChat", "input": ["First text", "Second text"]})
    assert response.json() == [{"object": "tokens", "tokens": 2, "characters": 10},
                               {"object": "tokens", "tokens": 2, "characters": 11}]
    assert shape(response.json()) == shape(real)
    real = json.loads(api_response("test_embeddings_multiple.yaml")["body"]["string"])
    response = requests.post(emu.base_url + "/embeddings", headers=auth, timeout=TIMEOUT,
                             json={"input": ["First text", "Second text"], "model": "Embeddings"})
    body = response.json()
    assert list(body) == list(real)
    assert [list(item) for item in body["data"]] == [list(item) for item in real["data"]]
    again = requests.post(emu.base_url + "/embeddings", headers=auth, timeout=TIMEOUT,
                          json={"input": ["First text"], "model": "Embeddings"}).json()
    assert again["data"][0]["embedding"] == body["data"][0]["embedding"]  # deterministic


def test_unknown_paths_and_methods(emu, auth):
    # v2 has only chat: its other paths do not exist
    for path in ("/api/v1/nope", "/nope", "/api/v2/models", "/api/v2/embeddings"):
        response = requests.get(emu.url + path, headers=auth, timeout=TIMEOUT)
        assert response.status_code == 404
        assert response.json() == {"status": 404, "message": "Not Found"}
    for base in (emu.base_url, emu.url + "/api/v2"):
        response = requests.get(base + "/chat/completions", headers=auth, timeout=TIMEOUT)
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"
    assert requests.get(emu.url + "/v1/models", headers=auth, timeout=TIMEOUT).status_code == 200


def test_session_id_is_echoed(emu, auth):
    response = chat(emu, {"messages": USER}, dict(auth, **{"X-Session-ID": "my-session"}))
    assert response.headers["X-Session-Id"] == "my-session"


# -- transport -------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(emu, auth):
    conn = http.client.HTTPConnection("127.0.0.1", port(emu), timeout=TIMEOUT)
    body = json.dumps({"messages": USER}).encode()
    headers = {"Content-Type": "application/json", **auth}
    sockets = []
    for stream in (False, True, False):
        payload = json.dumps({"messages": USER, "stream": stream}).encode() if stream else body
        conn.request("POST", "/api/v1/chat/completions", payload, headers)
        response = conn.getresponse()
        assert response.status == 200
        assert response.read().endswith(b"}" if not stream else b"data: [DONE]\n\n")
        sockets.append(conn.sock)
    conn.request("GET", "/api/v1/models", headers=auth)
    assert conn.getresponse().read().startswith(b'{"object":"list"')
    sockets.append(conn.sock)
    assert sockets[0] is not None and all(sock is sockets[0] for sock in sockets)
    conn.close()


def test_chunked_request_body(emu, auth):
    conn = http.client.HTTPConnection("127.0.0.1", port(emu), timeout=TIMEOUT)
    parts = iter([b'{"messages": [{"role": "user", ', b'"content": "chunked"}]}'])
    conn.request("POST", "/api/v1/chat/completions", parts, {"Content-Type": "application/json", **auth},
                 encode_chunked=True)
    body = json.loads(conn.getresponse().read())
    assert body["choices"][0]["message"]["content"] == "Echo: chunked"
    conn.close()


def test_malformed_http_gets_json_error_and_close(emu):
    with socket.create_connection(("127.0.0.1", port(emu)), timeout=TIMEOUT) as raw:
        raw.sendall(b"POST /api/v1/chat/completions HTTP/1.1\r\nContent-Length: lots\r\n\r\n")
        reply = b""
        while True:  # the server closes after an unparsable request
            data = raw.recv(4096)
            if not data:
                break
            reply += data
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in head
    assert json.loads(body) == {"status": 400, "message": "Bad Content-Length"}


def test_concurrent_clients(emu):
    results: List[int] = []

    def worker() -> None:
        results.append(chat(emu, {"messages": USER}).status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert results == [200] * 8
    assert emu.oauth_calls == 8


def stop_promptly(emulator: Emulator) -> None:
    stopper = threading.Thread(target=emulator.stop)
    stopper.start()
    stopper.join(8)  # hang guard only
    assert not stopper.is_alive(), "stop() hung"


def test_stop_with_idle_keep_alive_and_stalled_clients():
    emulator = Emulator(faults=[Fault(path="*/models", stall=60)]).start()
    auth = bearer(emulator)
    idle = http.client.HTTPConnection("127.0.0.1", port(emulator), timeout=TIMEOUT)
    idle.request("GET", "/api/v1/models/GigaChat", headers=auth)  # the glob spares it
    assert idle.getresponse().read()
    half = socket.create_connection(("127.0.0.1", port(emulator)), timeout=TIMEOUT)
    half.sendall(b"POST /api/v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    stalled = http.client.HTTPConnection("127.0.0.1", port(emulator), timeout=TIMEOUT)
    stalled.request("GET", "/api/v1/models", headers=auth)
    # The stalled request has reached its handler (and the half-sent one, accepted before it, its own).
    assert wait_for(lambda: sum(r.path == "/api/v1/models" for r in emulator.requests) == 1)
    stop_promptly(emulator)
    with pytest.raises((http.client.HTTPException, OSError)):
        stalled.getresponse().read()
    assert half.recv(100) == b""  # closed by stop()
    half.close()
    idle.close()


# -- faults ------------------------------------------------------------------------------


def test_status_fault_with_retry_after_and_times(emu, auth):
    emu.add_fault(Fault(path="chat/completions", status=429, retry_after="2", times=2))
    for _ in range(2):
        response = chat(emu, {"messages": USER}, auth)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
        assert response.content == b'{"status":429,"message":"Too Many Requests"}\n'
    assert chat(emu, {"messages": USER}, auth).status_code == 200
    assert requests.get(emu.base_url + "/models", headers=auth, timeout=TIMEOUT).status_code == 200


def test_status_fault_http_date_and_message(emu, auth):
    emu.add_fault(parse_fault("chat:503:retry_after=Wed, 21 Oct 2015 07:28:00 GMT:message=down"))
    response = chat(emu, {"messages": USER}, auth)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert response.json() == {"status": 503, "message": "down"}


def test_oauth_status_fault_uses_oauth_shape(emu):
    emu.add_fault(Fault(path="oauth", status=500, times=1))
    response = oauth(emu)
    assert response.status_code == 500
    assert response.json() == {"code": 500, "message": "Internal Server Error"}
    assert oauth(emu).status_code == 200
    assert emu.oauth_calls == 2


def test_unauthorized_fault(emu, auth):
    emu.add_fault(Fault(path="*", unauthorized=True))
    assert oauth(emu).json() == {"code": 6, "message": "credentials doesn't match db data"}
    response = chat(emu, {"messages": USER}, auth)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "Token has expired"}
    emu.clear_faults()
    assert chat(emu, {"messages": USER}, auth).status_code == 200


def test_reset_fault(emu, auth):
    emu.add_fault(Fault(path="chat", reset=True, times=1))
    with pytest.raises(requests.ConnectionError):
        chat(emu, {"messages": USER}, auth)
    assert chat(emu, {"messages": USER}, auth).status_code == 200
    assert [r.path for r in emu.requests].count("/api/v1/chat/completions") == 2


def test_html_and_empty_body_faults(emu, auth):
    emu.add_fault(Fault(path="models", content_type="text/html", times=1))
    emu.add_fault(Fault(path="models", empty_body=True, times=1))
    response = requests.get(emu.base_url + "/models", headers=auth, timeout=TIMEOUT)
    assert (response.status_code, response.headers["Content-Type"]) == (200, "text/html")
    assert response.text.startswith("<html>")
    response = requests.get(emu.base_url + "/models", headers=auth, timeout=TIMEOUT)
    assert (response.status_code, response.headers["Content-Length"], response.content) == (200, "0", b"")
    assert requests.get(emu.base_url + "/models", headers=auth, timeout=TIMEOUT).json()["object"] == "list"


def test_cut_after_fault(emu, auth):
    emu.set_reply("x" * 40)  # 5 content events + final + [DONE]
    emu.add_fault(Fault(path="chat", cut_after=2, times=2))
    assert chat(emu, {"messages": USER}, auth).status_code == 200  # non-stream: not counted
    conn, response = raw_stream(emu, auth, {"messages": USER})
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    conn.close()
    assert len(events(caught.value.partial)) == 2
    assert b"[DONE]" not in caught.value.partial
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.post(emu.base_url + "/chat/completions", headers=auth, timeout=TIMEOUT,
                      json={"messages": USER, "stream": True}).content
    assert stream_body(emu, auth).endswith(b"data: [DONE]\n\n")


def test_cut_after_every_event_drops_only_the_terminator(emu, auth):
    emu.add_fault(Fault(path="chat", cut_after=999))
    conn, response = raw_stream(emu, auth, {"messages": USER})
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    conn.close()
    assert caught.value.partial.endswith(b"data: [DONE]\n\n")


def test_malformed_fault(emu, auth):
    emu.add_fault(Fault(path="chat", malformed_after=1))
    parts = events(stream_body(emu, auth))
    assert parts[1] == b"data: {not json"
    assert event_json(parts[0])["choices"][0]["delta"]["role"] == "assistant"
    assert parts[-1] == b"data: [DONE]" and len(parts) == 4


def test_stream_error_fault(emu, auth):
    emu.add_fault(Fault(path="chat", stream_error_after=1, status=503))
    parts = events(stream_body(emu, auth))  # the body still ends cleanly
    assert len(parts) == 2
    assert parts[1] == b'data: {"status":503,"message":"Service Unavailable"}'


@pytest.mark.slow
def test_stall_fault_times_out_client_then_stop_is_prompt():
    emulator = Emulator(faults=[Fault(path="chat", stall=60, after=1)]).start()
    auth = bearer(emulator)
    emulator.add_fault(Fault(path="models", stall=60))
    with pytest.raises(requests.exceptions.ConnectionError):  # ReadTimeout mid-stream
        requests.post(emulator.base_url + "/chat/completions", headers=auth, timeout=0.5,
                      json={"messages": USER, "stream": True}).content
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(emulator.base_url + "/models", headers=auth, timeout=0.5)
    assert chat(emulator, {"messages": USER}, auth).status_code == 200  # others still served
    stop_promptly(emulator)


def test_short_stall_then_status(emu, auth):
    emu.add_fault(Fault(path="chat", stall=0.05, status=502, times=1))
    assert chat(emu, {"messages": USER}, auth).status_code == 502
    emu.add_fault(Fault(path="chat", stall=0.05, after=2, times=1))
    assert stream_body(emu, auth).endswith(b"data: [DONE]\n\n")  # a stall only delays


def test_glob_path_and_first_match_wins(emu, auth):
    emu.add_fault(Fault(path="/api/v1/models/*", status=503))
    emu.add_fault(Fault(path="models", status=500))
    get = lambda path: requests.get(emu.base_url + path, headers=auth, timeout=TIMEOUT).status_code  # noqa: E731
    assert get("/models/GigaChat") == 503
    assert get("/models") == 500


# -- parse_fault ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, fault",
    [
        ("chat:429:retry_after=2:times=3",
         Fault(path="chat/completions", status=429, retry_after="2", times=3)),
        ("oauth:reset:times=1", Fault(path="oauth", reset=True, times=1)),
        ("chat:cut=3", Fault(path="chat/completions", cut_after=3)),
        ("chat:cut_after=3", Fault(path="chat/completions", cut_after=3)),
        ("chat:stall=5:after=2", Fault(path="chat/completions", stall=5.0, after=2)),
        ("models:stall=0.5:503", Fault(path="models", stall=0.5, status=503)),
        ("chat:malformed=1", Fault(path="chat/completions", malformed_after=1)),
        ("chat:error=2:status=502", Fault(path="chat/completions", stream_error_after=2, status=502)),
        ("any:html", Fault(path="*", content_type="text/html")),
        ("*:content_type=text/plain; charset=utf-8", Fault(path="*", content_type="text/plain; charset=utf-8")),
        ("embeddings:empty", Fault(path="embeddings", empty_body=True)),
        ("/api/v1/models*:unauthorized", Fault(path="/api/v1/models*", unauthorized=True)),
        ("chat:503:retry_after=Wed, 21 Oct 2015 07:28:00 GMT",
         Fault(path="chat/completions", status=503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")),
        ("chat:500:message=a: b", Fault(path="chat/completions", status=500, message="a: b")),
    ],
)
def test_parse_fault(spec, fault):
    assert parse_fault(spec) == fault


@pytest.mark.parametrize(
    "spec, bad",
    [
        ("chat", "TARGET:ACTION"),
        ("chat:", "TARGET:ACTION"),
        (":429", "empty target"),
        ("chat:teapot", "'teapot'"),
        ("chat:times=x", "'times=x'"),
        ("chat:stall=soon", "'stall=soon'"),
        ("chat:429:times=1:times=2", "'times' given twice"),
        ("chat:429:reset", "one action"),
        ("chat:times=3", "needs an action"),
        ("chat:999", "status"),
        ("chat:after=2:429", "after"),
        ("chat:stall=1:retry_after=2", "retry_after needs a status"),
        ("chat:cut=-1", "cut_after must be a non-negative int"),
    ],
)
def test_parse_fault_errors_name_the_bad_part(spec, bad):
    with pytest.raises(ValueError) as caught:
        parse_fault(spec)
    assert bad in str(caught.value)
    assert repr(spec) in str(caught.value)


@given(st.text(max_size=40))
def test_parse_fault_only_raises_value_error(spec):
    try:
        assert isinstance(parse_fault(spec), Fault)
    except ValueError:
        pass


# -- TLS ---------------------------------------------------------------------------------


def test_tls_with_trustme_ca():
    pytest.importorskip("trustme")
    with Emulator(tls=True) as emulator:
        assert emulator.url.startswith("https://127.0.0.1:")
        bundle = Path(emulator.ca_bundle)
        assert bundle.read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert emulator.client_config()["ca_bundle"] == str(bundle)
        assert emulator.env()["GIGACHAT_CA_BUNDLE_FILE"] == str(bundle)
        with requests.Session() as session:  # several requests over one TLS connection
            auth = bearer(emulator)
            assert chat(emulator, {"messages": USER}, auth, session).status_code == 200
            # a client that does not trust the CA is refused
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(emulator.base_url + "/models", timeout=TIMEOUT, verify=True)
            # one silent client (no handshake) must not block the others
            with socket.create_connection(("127.0.0.1", port(emulator))):
                response = session.post(emulator.base_url + "/chat/completions", headers=auth,
                                        json={"messages": USER, "stream": True},
                                        verify=str(bundle), timeout=TIMEOUT)
                assert response.content.endswith(b"data: [DONE]\n\n")
            stop_promptly(emulator)
    assert not bundle.exists()  # the throwaway CA is deleted on stop


def test_tls_with_given_certificate(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with Emulator(certfile=str(tmp_path / "server.pem"), ca_bundle=str(tmp_path / "ca.pem")) as emulator:
        assert emulator.tls and emulator.ca_bundle == str(tmp_path / "ca.pem")
        assert oauth(emulator).status_code == 200


def test_tls_without_trustme_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "trustme", None)  # makes `import trustme` fail
    with pytest.raises(RuntimeError, match="pip install trustme"):
        Emulator(tls=True).start()


# -- secrets stay out of logs and reprs ----------------------------------------------------


@pytest.mark.gigachat_emulator(keys=("S3CRET-KEY",))
def test_keys_and_tokens_are_never_logged(emu, caplog):
    caplog.set_level(logging.DEBUG)
    access = token(emu)
    chat(emu, {"messages": USER}, {"Authorization": "Bearer " + access})
    text = caplog.text + repr(emu) + repr(emu.requests)
    assert "POST /api/v1/chat/completions" in caplog.text  # the access log is there...
    assert "S3CRET-KEY" not in text and access not in text  # ...without secrets


def test_failed_bind_leaves_no_throwaway_ca_behind() -> None:
    import glob
    import os
    import tempfile

    pytest.importorskip("trustme")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        before = set(glob.glob(os.path.join(tempfile.gettempdir(), "gigachat-emulator-*")))
        emu = Emulator(tls=True, port=port)
        with pytest.raises(OSError):
            emu.start()
        emu.stop()
        after = set(glob.glob(os.path.join(tempfile.gettempdir(), "gigachat-emulator-*")))
    assert after <= before
