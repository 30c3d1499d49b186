"""The chat path against a strict `responses` mock: wire format, auth flow, errors, replays."""

from __future__ import annotations

import json
import uuid

import pytest
import responses

from gigachat_lite import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ChatReply,
    ChatStream,
    MissingAuthError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    ServerError,
    Session,
    StreamError,
    chat,
)

from gigachat_lite import Config
from gigachat_lite.session import shared_session

from conftest import AUTH, BASE, KEY, cassette_body, count_sends, fixture_text, load_cassette

CFG = dict(api_key=KEY, base_url=BASE, auth_url=AUTH, max_retries=0)
SSE = {"Content-Type": "text/event-stream"}


def oauth_ok(rsps: responses.RequestsMock, token: str = "tok-1", expires_ms: int = 4102444800000) -> responses.BaseResponse:
    return rsps.post(AUTH, json={"access_token": token, "expires_at": expires_ms})


def stream_body(*pieces: str, finish: str = "stop") -> str:
    events = [{"choices": [{"delta": {"content": p, **({"role": "assistant"} if i == 0 else {})}, "index": 0}],
               "created": 1, "model": "GigaChat:test", "object": "chat.completion"} for i, p in enumerate(pieces)]
    events.append({"choices": [{"delta": {"content": ""}, "index": 0, "finish_reason": finish}], "created": 1,
                   "model": "GigaChat:test", "object": "chat.completion",
                   "usage": {"prompt_tokens": 3, "completion_tokens": len(pieces), "total_tokens": 3 + len(pieces)}})
    return "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + "data: [DONE]\n\n"


@responses.activate(assert_all_requests_are_fired=True)
def test_stream_sends_the_documented_wire_format_and_yields_chunks() -> None:
    oauth = oauth_ok(responses.mock)
    api = responses.post(f"{BASE}/chat/completions", body=stream_body("При", "вет"), headers=SSE)
    stream = chat("Привет", temperature=0.3, max_tokens=None, **CFG)
    assert isinstance(stream, ChatStream)
    assert list(stream) == ["При", "вет"]
    assert stream.finish_reason == "stop"
    assert stream.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert stream.text == "Привет"

    token_request = oauth.calls[0].request
    assert token_request.headers["Authorization"] == f"Basic {KEY}"
    assert uuid.UUID(token_request.headers["RqUID"]).version == 4
    assert token_request.body == "scope=GIGACHAT_API_PERS"
    chat_request = api.calls[0].request
    assert chat_request.headers["Authorization"] == "Bearer tok-1"
    assert chat_request.headers["Accept"] == "text/event-stream"
    raw = chat_request.body
    assert "Привет".encode("utf-8") in raw  # UTF-8 as is, no \u escapes
    assert json.loads(raw) == {
        "model": "GigaChat", "messages": [{"role": "user", "content": "Привет"}], "stream": True, "temperature": 0.3,
    }


@responses.activate(assert_all_requests_are_fired=True)
def test_repeated_calls_share_one_token_and_one_session(monkeypatch: pytest.MonkeyPatch) -> None:
    oauth = oauth_ok(responses.mock)
    responses.post(f"{BASE}/chat/completions", body=stream_body("a"), headers=SSE)
    shared = shared_session(Config.resolve(**CFG))
    sent = count_sends(monkeypatch, shared)
    for _ in range(3):
        assert "".join(chat("hi", **CFG)) == "a"
    assert len(oauth.calls) == 1
    assert [path for path in sent if path.endswith("/chat/completions")] == [f"{BASE}/chat/completions"] * 3


@responses.activate(assert_all_requests_are_fired=True)
def test_non_stream_reply_replays_recorded_cassette() -> None:
    oauth_ok(responses.mock)
    recorded = load_cassette("test_chat_simple.yaml")[-1]
    responses.post(f"{BASE}/chat/completions", body=cassette_body(recorded),
                   headers={"Content-Type": "application/json", "X-Request-Id": "rid-1"})
    reply = chat([{"role": "user", "content": "Hi"}], stream=False, **CFG)
    payload = json.loads(cassette_body(recorded))
    assert isinstance(reply, ChatReply)
    assert reply.content == payload["choices"][0]["message"]["content"]
    assert list(reply) == [reply.content]
    assert reply.finish_reason == payload["choices"][0]["finish_reason"]
    assert reply.usage == payload["usage"]
    assert reply.request_id == "rid-1"
    assert "stream" not in json.loads(responses.calls[-1].request.body)


@responses.activate(assert_all_requests_are_fired=True)
def test_recorded_real_stream_replays_to_the_recorded_text() -> None:
    oauth_ok(responses.mock)
    recorded = load_cassette("test_stream_simple.yaml")[-1]
    body = cassette_body(recorded)
    responses.post(f"{BASE}/chat/completions", body=body, headers=SSE)
    expected = []
    for block in body.decode("utf-8").split("\n\n"):
        if block.startswith("data: {"):
            delta = json.loads(block[6:])["choices"][0]["delta"]
            if delta.get("content"):
                expected.append(delta["content"])
    stream = chat("Count from 1 to 3", **CFG)
    assert list(stream) == expected and expected
    assert stream.finish_reason == "stop"
    assert stream.usage and stream.usage["total_tokens"] > 0


@responses.activate(assert_all_requests_are_fired=True)
def test_recorded_fixture_stream_replays() -> None:
    oauth_ok(responses.mock)
    responses.post(f"{BASE}/chat/completions", body=fixture_text("chat_completion.stream").encode(), headers=SSE)
    stream = chat("hi", **CFG)
    chunks = list(stream)
    assert chunks[-1] == "." and chunks[0].startswith("Конечно")
    assert stream.finish_reason == "stop"


@pytest.mark.parametrize(
    "status,exc",
    [(400, BadRequestError), (402, PaymentRequiredError), (404, NotFoundError), (413, BadRequestError),
     (422, BadRequestError), (429, RateLimitError), (500, ServerError), (503, ServerError)],
)
@responses.activate(assert_all_requests_are_fired=True)
def test_error_statuses_map_to_typed_errors(status: int, exc: type) -> None:
    oauth_ok(responses.mock)
    responses.post(f"{BASE}/chat/completions", json={"status": status, "message": f"msg {status}"}, status=status,
                   headers={"X-Request-Id": "rid-9", "Retry-After": "7"})
    with pytest.raises(exc) as info:
        chat("hi", **CFG)
    assert info.value.status_code == status
    assert info.value.message == f"msg {status}"
    assert info.value.request_id == "rid-9"
    if status == 429:
        assert info.value.retry_after == 7.0


@responses.activate(assert_all_requests_are_fired=True)
def test_recorded_model_not_found() -> None:
    oauth_ok(responses.mock)
    recorded = load_cassette("test_chat_model_not_found.yaml")[-1]
    responses.post(f"{BASE}/chat/completions", body=cassette_body(recorded), status=404,
                   headers={"Content-Type": "application/json; charset=utf-8",
                            "X-Request-Id": recorded["response"]["headers"]["X-Request-Id"][0]})
    with pytest.raises(NotFoundError) as info:
        chat("hi", model="NoSuchModel", stream=False, **CFG)
    assert info.value.message == "No such model"
    assert info.value.request_id == "ea602be2-54b3-46a2-a288-420c9fee7292"


@responses.activate(assert_all_requests_are_fired=True)
def test_wrong_content_type_is_stream_error() -> None:
    oauth_ok(responses.mock)
    responses.post(f"{BASE}/chat/completions", body="<html>maintenance</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(StreamError, match="text/html"):
        chat("hi", **CFG)


@responses.activate(assert_all_requests_are_fired=True)
def test_in_stream_error_object_is_api_error_after_the_chunks() -> None:
    oauth_ok(responses.mock)
    body = stream_body("a", "b").split("data: {\"choices\":[{\"delta\":{\"content\":\"\"}")[0]
    body = 'data: {"choices":[{"delta":{"content":"a"},"index":0}]}\n\ndata: {"status":500,"message":"boom"}\n\n'
    responses.post(f"{BASE}/chat/completions", body=body, headers=SSE)
    stream = chat("hi", **CFG)
    assert next(stream) == "a"
    with pytest.raises(APIError) as info:
        next(stream)
    assert info.value.status_code == 500 and info.value.message == "boom"


@responses.activate(assert_all_requests_are_fired=True)
def test_session_chat_with_body_params_leaves_none_out() -> None:
    oauth_ok(responses.mock)
    api = responses.post(f"{BASE}/chat/completions", body=stream_body("x"), headers=SSE)
    with Session(**CFG) as s:
        out = list(s.chat([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                          model="GigaChat-Pro", temperature=0.3, top_p=None, profanity_check=False, update_interval=0.5))
    assert out == ["x"]
    body = json.loads(api.calls[0].request.body)
    assert body["model"] == "GigaChat-Pro"
    assert body["update_interval"] == 0.5 and body["profanity_check"] is False
    assert "top_p" not in body


def test_missing_auth_is_raised_before_any_request() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        with pytest.raises(MissingAuthError, match="GIGACHAT_CREDENTIALS"):
            chat("hi", base_url=BASE, auth_url=AUTH)
        assert len(rsps.calls) == 0


def test_environment_key_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIGACHAT_API_KEY", KEY)  # gpt4free's name
    monkeypatch.setenv("GIGACHAT_BASE_URL", BASE)
    monkeypatch.setenv("GIGACHAT_AUTH_URL", AUTH)
    with responses.RequestsMock() as rsps:
        oauth = oauth_ok(rsps)
        rsps.post(f"{BASE}/chat/completions", body=stream_body("env"), headers=SSE)
        assert list(chat("hi", max_retries=0)) == ["env"]
        assert oauth.calls[0].request.headers["Authorization"] == f"Basic {KEY}"


@responses.activate(assert_all_requests_are_fired=True)
def test_an_error_carries_no_credential_in_its_request_headers() -> None:
    responses.post(AUTH, json={"access_token": "t1", "expires_at": 4102444800000})
    responses.post(AUTH, json={"access_token": "t2", "expires_at": 4102444800000})
    responses.post(f"{BASE}/chat/completions", json={"status": 401, "message": "Token has expired"}, status=401)
    with pytest.raises(AuthenticationError) as info:
        chat("hi", **CFG)
    response = info.value.response
    for item in [response, *response.history]:
        assert item.request.headers["Authorization"] == "<redacted>"


@responses.activate(assert_all_requests_are_fired=True)
def test_oauth_error_carries_no_key_in_its_request_headers() -> None:
    responses.post(AUTH, json={"code": 6, "message": "bad"}, status=401)
    with pytest.raises(AuthenticationError) as info:
        chat("hi", **CFG)
    assert KEY not in str(info.value.response.request.headers)


@responses.activate(assert_all_requests_are_fired=True)
def test_with_a_key_too_an_expired_user_token_hands_over_to_oauth() -> None:
    seen = []

    def api(request):  # type: ignore[no-untyped-def]
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer user-token":
            return 401, {}, json.dumps({"status": 401, "message": "Token has expired"})
        return 200, {"Content-Type": "text/event-stream"}, stream_body("ok")

    oauth = oauth_ok(responses.mock, token="from-key")
    responses.add_callback(responses.POST, f"{BASE}/chat/completions", callback=api)
    with Session(access_token="user-token", **CFG) as s:
        assert list(s.chat("hi")) == ["ok"]
        assert list(s.chat("again")) == ["ok"]
    assert seen == ["Bearer user-token", "Bearer from-key", "Bearer from-key"]
    assert len(oauth.calls) == 1
