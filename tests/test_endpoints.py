"""Models, embeddings, token counts, balance, function calling and files.

Each call runs against the emulator and against recorded GigaChat replies
replayed by a strict ``responses`` mock. Files and the 403 of ``/balance`` have
no recording: their replies here follow the official SDK's models.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
from typing import Any, Dict, Iterator, List

import pytest
import responses

import gigachat_lite
from gigachat_lite import (
    Embeddings,
    NotFoundError,
    PermissionDeniedError,
    Session,
    TokenCount,
    aio,
    balance,
    delete_file,
    embeddings,
    file,
    file_content,
    files,
    model,
    models,
    tokens_count,
    upload_file,
)
from gigachat_lite.emulator import Emulator
from gigachat_lite.emulator.replies import embedding_vector

from gigachat_lite import Config
from gigachat_lite.session import shared_session

from conftest import AUTH, BASE, KEY, cassette_body, count_sends, fixture_json, load_cassette

CFG = dict(api_key=KEY, base_url=BASE, auth_url=AUTH, max_retries=0)
REAL_BASE = "https://gigachat.devices.sberbank.ru/api/v1"
SSE = {"Content-Type": "text/event-stream"}


# -- fixtures and helpers ------------------------------------------------------------------




@pytest.fixture
def session(emu: Emulator) -> Iterator[Session]:
    with Session(**emu.client_config(), max_retries=0) as s:
        yield s


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(AUTH, json={"access_token": "tok-1", "expires_at": 4102444800000})
        yield mock


@pytest.fixture
def strict() -> Iterator[responses.RequestsMock]:
    """A mock that expects no request at all: any request fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def api_calls(emu: Emulator) -> List[str]:
    return [f"{r.method} {r.path}" for r in emu.requests if "/oauth" not in r.path]


def replay(rsps: responses.RequestsMock, cassette: str) -> Any:
    """Register the API interaction of a recorded cassette at our test base URL."""
    recorded = load_cassette(cassette)[1]
    return rsps.add(
        recorded["request"]["method"],
        recorded["request"]["uri"].replace(REAL_BASE, BASE),
        body=cassette_body(recorded),
        status=recorded["response"]["status"]["code"],
        headers={"X-Request-Id": recorded["response"]["headers"]["X-Request-Id"][0]},
        content_type="application/json",
    )


def recorded_json(cassette: str) -> Any:
    return json.loads(cassette_body(load_cassette(cassette)[1]))


def function_stream(reply: Dict[str, Any], state_id: str) -> str:
    """The streamed variant of a recorded function-call reply: call in one delta, then the finish."""
    choice = reply["choices"][0]
    delta = dict(choice["message"], functions_state_id=state_id)
    head = {"choices": [{"delta": delta, "index": 0}], "created": reply["created"], "model": reply["model"], "object": "chat.completion"}
    tail = {"choices": [{"delta": {"content": ""}, "index": 0, "finish_reason": choice["finish_reason"]}],
            "created": reply["created"], "model": reply["model"], "object": "chat.completion", "usage": reply["usage"]}
    return "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in (head, tail)) + "data: [DONE]\n\n"


WEATHER = fixture_json("chat_function.json")  # the recorded request: messages, functions, model
FC_ARGS = {"location": "Москва", "num_days": 0}


# -- models -------------------------------------------------------------------------------


def test_models_replay(rsps: responses.RequestsMock) -> None:
    api = replay(rsps, "test_get_models.yaml")
    listing = models(**CFG)
    assert listing == recorded_json("test_get_models.yaml")["data"]
    assert listing[0] == {"id": "GigaChat", "object": "model", "owned_by": "salutedevices", "type": "chat"}
    assert len(listing) == 20
    assert api.calls[0].request.headers["Authorization"] == "Bearer tok-1"


def test_model_replay(rsps: responses.RequestsMock) -> None:
    replay(rsps, "test_get_model.yaml")
    assert Session(**CFG).model("GigaChat") == {"id": "GigaChat", "object": "model", "owned_by": "salutedevices", "type": "chat"}


def test_model_not_found_replay(rsps: responses.RequestsMock) -> None:
    replay(rsps, "test_get_model_not_found.yaml")
    with pytest.raises(NotFoundError) as caught:
        model("NonExistentModel", **CFG)
    assert caught.value.status_code == 404
    assert caught.value.message == "No such model"
    assert caught.value.request_id == "5c725f1b-c308-4c5b-9feb-4a061a6b10d7"


def test_models_emulator(emu: Emulator, session: Session) -> None:
    listing = session.models()
    assert [m["id"] for m in listing] == [i for i, _ in emu.model_list()]
    assert {"id": "Embeddings", "object": "model", "owned_by": "salutedevices", "type": "embedder"} in listing
    assert session.model("GigaChat-Pro")["id"] == "GigaChat-Pro"
    with pytest.raises(NotFoundError, match="No such model"):
        session.model("Nope")


def test_model_id_is_one_quoted_path_segment(emu: Emulator, session: Session) -> None:
    with pytest.raises(NotFoundError):
        session.model("a/b?c d")
    assert api_calls(emu) == ["GET /api/v1/models/a%2Fb%3Fc%20d"]


@pytest.mark.parametrize("bad, error", [("", ValueError), ("  ", ValueError), (None, TypeError), (5, TypeError)])
def test_bad_model_id_is_refused_before_any_request(emu: Emulator, session: Session, bad: Any, error: type) -> None:
    with pytest.raises(error, match="model_id"):
        session.model(bad)
    assert emu.requests == []


# -- embeddings --------------------------------------------------------------------------


@pytest.mark.parametrize("cassette, texts", [
    ("test_embeddings_single.yaml", ["Hello, world!"]),
    ("test_embeddings_multiple.yaml", ["First text", "Second text"]),
])
def test_embeddings_replay(rsps: responses.RequestsMock, cassette: str, texts: List[str]) -> None:
    api = replay(rsps, cassette)
    result = embeddings(texts, **CFG)
    recorded = recorded_json(cassette)["data"]
    assert json.loads(api.calls[0].request.body) == {"input": texts, "model": "Embeddings"}
    assert isinstance(result, Embeddings)
    assert result.vectors == [item["embedding"] for item in recorded]
    assert len(result) == len(texts) and len(result[0]) == 1024
    assert list(result) == result.vectors
    assert result.usage == [item["usage"] for item in recorded]
    assert result.prompt_tokens == sum(item["usage"]["prompt_tokens"] for item in recorded)
    assert result.model == "Embeddings"


def test_embeddings_are_put_back_in_input_order(rsps: responses.RequestsMock) -> None:
    payload = recorded_json("test_embeddings_multiple.yaml")
    shuffled = copy.deepcopy(payload)
    shuffled["data"].reverse()
    rsps.post(f"{BASE}/embeddings", json=shuffled)
    result = embeddings(["First text", "Second text"], **CFG)
    assert result.vectors == [payload["data"][0]["embedding"], payload["data"][1]["embedding"]]


def test_embeddings_emulator(emu: Emulator, session: Session) -> None:
    result = session.embeddings(["кот", "собака"])
    assert result.vectors == [embedding_vector("кот"), embedding_vector("собака")]
    assert result.usage == [{"prompt_tokens": 1}, {"prompt_tokens": 1}]
    one = session.embeddings("кот")  # a str is one text
    assert one.vectors == [embedding_vector("кот")]
    assert emu.requests[-1].json == {"input": ["кот"], "model": "Embeddings"}
    with pytest.raises(NotFoundError):
        session.embeddings(["кот"], model="GigaChat")  # not an embedder


@pytest.mark.parametrize("bad, error, where", [
    ([], ValueError, "texts is empty"),
    ([""], ValueError, r"texts\[0\] is an empty str"),
    (["ok", 1], TypeError, r"texts\[1\] must be a str, got int"),
    (["ok", None], TypeError, r"texts\[1\] must be a str, got NoneType"),
    (b"bytes", TypeError, "got bytes"),
    ({"a"}, TypeError, "got set"),
    (None, TypeError, "got NoneType"),
])
def test_bad_texts_are_refused_before_any_request(strict: responses.RequestsMock, bad: Any, error: type, where: str) -> None:
    with pytest.raises(error, match=where):
        embeddings(bad, **CFG)
    with pytest.raises(error, match=where):
        tokens_count(bad, **CFG)
    with pytest.raises(error, match=where):
        asyncio.run(aio.embeddings(bad, **CFG))
    assert len(strict.calls) == 0


# -- token counts --------------------------------------------------------------------------


@pytest.mark.parametrize("cassette, texts, counts, characters", [
    ("test_tokens_count_single.yaml", ["Hello, world!"], [4], [13]),
    ("test_tokens_count_multiple.yaml", ["First text", "Second text"], [2, 2], [10, 11]),
])
def test_tokens_count_replay(rsps: responses.RequestsMock, cassette: str, texts: List[str], counts: List[int], characters: List[int]) -> None:
    api = replay(rsps, cassette)
    result = tokens_count(texts, **CFG)
    assert api.calls[0].request.body == json.dumps({"model": "GigaChat", "input": texts}, separators=(",", ":")).encode()
    assert result == counts
    assert all(isinstance(count, TokenCount) and isinstance(count, int) for count in result)
    assert [count.characters for count in result] == characters


def test_tokens_count_emulator_uses_the_session_model(emu: Emulator) -> None:
    with Session(**emu.client_config(), model="GigaChat-Pro") as s:
        assert s.tokens_count(["12345678", "123456789"]) == [1, 2]  # the emulator: 8 characters a token
        assert emu.requests[-1].json == {"model": "GigaChat-Pro", "input": ["12345678", "123456789"]}
        assert s.tokens_count("x", model="GigaChat-Max") == [1]
        assert emu.requests[-1].json == {"model": "GigaChat-Max", "input": ["x"]}


# -- balance -------------------------------------------------------------------------------


def test_balance_replay(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/balance", json=fixture_json("balance.json"))
    assert balance(**CFG) == {"embeddings": 9999967, "GigaChat-Pro": 991490, "GigaChat-Max": 50000, "GigaChat": 900000}


def test_balance_403_says_pre_paid_only(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/balance", status=403, json={"status": 403, "message": "Permission denied"}, headers={"X-Request-Id": "r-403"})
    with pytest.raises(PermissionDeniedError) as caught:
        balance(**CFG)
    assert caught.value.status_code == 403
    assert caught.value.request_id == "r-403"
    assert caught.value.message == "the balance is only available for pre-paid accounts (server said: Permission denied)"


def test_balance_emulator(emu: Emulator, session: Session) -> None:
    assert session.balance() == fixture_balance()
    emu.balance = {"GigaChat": 5}
    assert session.balance() == {"GigaChat": 5}
    emu.postpaid = True
    with pytest.raises(PermissionDeniedError, match="pre-paid"):
        session.balance()


def fixture_balance() -> Dict[str, int]:
    return {item["usage"]: item["value"] for item in fixture_json("balance.json")["balance"]}


# -- function calling ------------------------------------------------------------------------


def test_function_round_trip_replay(rsps: responses.RequestsMock) -> None:
    api = rsps.post(f"{BASE}/chat/completions", json=fixture_json("chat_completion_function.json"))
    follow_up = rsps.post(f"{BASE}/chat/completions", json=fixture_json("chat_completion.json"))
    history = WEATHER["messages"]
    reply = gigachat_lite.chat(history, functions=WEATHER["functions"], function_call="auto", stream=False, **CFG)
    assert reply.finish_reason == "function_call"
    assert reply.function_call == {"name": "fc", "arguments": FC_ARGS}
    assert reply.functions_state_id is None  # this recording has none
    history = history + reply.function_result({"temperature": 3, "forecast": ["ясно"]})
    final = gigachat_lite.chat(history, functions=WEATHER["functions"], stream=False, **CFG)
    assert final.text.startswith("Конечно")
    sent = json.loads(follow_up.calls[0].request.body)
    assert sent["messages"][1:] == [
        {"role": "assistant", "content": "", "function_call": {"name": "fc", "arguments": FC_ARGS}},
        {"role": "function", "name": "fc", "content": '{"temperature": 3, "forecast": ["ясно"]}'},
    ]
    assert json.loads(api.calls[0].request.body)["function_call"] == "auto"


def test_streamed_function_call_replay(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/chat/completions", body=function_stream(fixture_json("chat_completion_function.json"), "st-1"), headers=SSE)
    stream = gigachat_lite.chat(WEATHER["messages"], functions=WEATHER["functions"], **CFG)
    assert list(stream) == []  # a call carries no text
    assert stream.function_call == {"name": "fc", "arguments": FC_ARGS}
    assert stream.functions_state_id == "st-1"
    assert stream.finish_reason == "function_call"
    assert stream.usage == {"prompt_tokens": 138, "completion_tokens": 21, "total_tokens": 159, "system_tokens": 0}
    assert stream.function_result({"ok": True})[0] == {
        "role": "assistant", "content": "", "function_call": {"name": "fc", "arguments": FC_ARGS}, "functions_state_id": "st-1"}


@pytest.mark.parametrize("stream", [False, True])
def test_function_round_trip_emulator(emu: Emulator, session: Session, stream: bool) -> None:
    history = WEATHER["messages"]
    reply = session.chat(history, functions=WEATHER["functions"], stream=stream)
    messages = reply.function_result({"temperature": -5})  # reads a stream to its end first
    assert reply.finish_reason == "function_call"
    assert reply.function_call == {"name": "fc", "arguments": {"location": history[0]["content"], "num_days": 0}}
    state_id = reply.functions_state_id
    assert isinstance(state_id, str) and len(state_id) == 36
    assert messages == [
        {"role": "assistant", "content": "", "function_call": reply.function_call, "functions_state_id": state_id},
        {"role": "function", "name": "fc", "content": '{"temperature": -5}'},
    ]
    final = session.chat(history + messages, functions=WEATHER["functions"], stream=stream)
    assert "".join(final) == 'Function fc returned: {"temperature": -5}'
    assert final.finish_reason == "stop"
    assert emu.requests[-1].json["messages"][1]["functions_state_id"] == state_id


def test_function_call_choice_emulator(session: Session) -> None:
    functions = [{"name": "first", "parameters": {"properties": {"unit": {"type": "string", "enum": ["c", "f"]}}}},
                 {"name": "second", "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
                                                   "required": ["q"]}}]
    named = session.chat("hi", functions=functions, function_call={"name": "second"}, stream=False)
    assert named.function_call == {"name": "second", "arguments": {"q": "hi"}}
    auto = session.chat("please call second", functions=functions, stream=False)
    assert auto.function_call == {"name": "second", "arguments": {"q": "please call second"}}
    first = session.chat("hi", functions=functions, function_call="auto", stream=False)
    assert first.function_call == {"name": "first", "arguments": {"unit": "c"}}
    text = session.chat("hi", functions=functions, function_call="none", stream=False)
    assert (text.function_call, text.text, text.finish_reason) == (None, "Echo: hi", "stop")
    with pytest.raises(ValueError, match="did not call a function"):
        text.function_result({})


def test_function_result_needs_json(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/chat/completions", json=fixture_json("chat_completion_function.json"))
    reply = gigachat_lite.chat("погода?", functions=WEATHER["functions"], stream=False, **CFG)
    with pytest.raises(TypeError, match="cannot be sent as JSON"):
        reply.function_result({"when": object()})


def test_follow_up_messages_pass_validation(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BASE}/chat/completions", json=fixture_json("chat_completion.json"))
    messages = [
        {"role": "user", "content": "погода?"},
        {"role": "assistant", "content": None, "function_call": {"name": "fc", "arguments": {}}, "functions_state_id": "s"},
        {"role": "function", "name": "fc", "content": "{}"},
    ]
    gigachat_lite.chat(messages, stream=False, **CFG)
    sent = json.loads(rsps.calls[-1].request.body)["messages"]
    assert sent[1] == {"role": "assistant", "content": "", "function_call": {"name": "fc", "arguments": {}},
                       "functions_state_id": "s"}
    assert sent[2] == messages[2]


# -- files -----------------------------------------------------------------------------------


def test_file_life_cycle_emulator(emu: Emulator, session: Session, tmp_path: Any) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("привет\r\n\x00".encode())
    uploaded = session.upload_file(path)
    assert {k: uploaded[k] for k in ("object", "bytes", "filename", "purpose")} == {
        "object": "file", "bytes": 15, "filename": "notes.txt", "purpose": "general"}
    file_id = uploaded["id"]
    upload = emu.requests[-1]
    assert upload.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="purpose"\r\n\r\ngeneral\r\n' in upload.body
    assert b'name="file"; filename="notes.txt"\r\nContent-Type: text/plain\r\n' in upload.body
    assert session.files() == [uploaded]
    assert session.file(file_id) == uploaded
    assert session.file_content(file_id) == path.read_bytes()
    assert session.delete_file(file_id) == {"id": file_id, "deleted": True}
    assert session.files() == []
    with pytest.raises(NotFoundError, match="No such file"):
        session.file(file_id)
    with pytest.raises(NotFoundError):
        session.file_content(file_id)
    with pytest.raises(NotFoundError):
        session.delete_file(file_id)


def test_upload_file_object_and_attach_it(emu: Emulator, session: Session) -> None:
    uploaded = session.upload_file(io.BytesIO(b"\x89PNG..."), purpose="general", filename="cat.png")
    assert b"Content-Type: image/png" in emu.requests[-1].body
    reply = session.chat([{"role": "user", "content": "что на картинке?", "attachments": [uploaded["id"]]}], stream=False)
    assert reply.text == "Echo: что на картинке?"
    assert emu.requests[-1].json["messages"][0]["attachments"] == [uploaded["id"]]


@pytest.mark.parametrize("source, kwargs, error, match", [
    (io.BytesIO(b"x"), {}, ValueError, "filename= is needed"),
    ("/no/such/file.txt", {}, ValueError, "no such file"),
    (42, {}, TypeError, "path or a binary file object"),
    (io.BytesIO(b"x"), {"filename": "a.txt", "purpose": ""}, ValueError, "purpose"),
])
def test_bad_uploads_are_refused_before_any_request(emu: Emulator, session: Session, source: Any, kwargs: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        session.upload_file(source, **kwargs)
    assert emu.requests == []


@pytest.mark.parametrize("call", [file, file_content, delete_file])
def test_bad_file_id_is_refused_before_any_request(strict: responses.RequestsMock, call: Any) -> None:
    with pytest.raises(ValueError, match="file_id"):
        call("", **CFG)
    assert len(strict.calls) == 0


# Replies shaped as the official SDK's UploadedFile / UploadedFiles / DeletedFile models.
FILE = {"id": "6f0b1291-c7f3-43c6-bb2e-9f3efb2dc98e", "object": "file", "bytes": 3, "created_at": 1738000000,
        "filename": "a.txt", "purpose": "general", "access_policy": "private"}


def test_files_replay(rsps: responses.RequestsMock) -> None:
    post = rsps.post(f"{BASE}/files", json=FILE)
    rsps.get(f"{BASE}/files", json={"data": [FILE]})
    rsps.get(f"{BASE}/files/{FILE['id']}", json=FILE)
    content = rsps.get(f"{BASE}/files/{FILE['id']}/content", body=b"abc", content_type="text/plain")
    rsps.post(f"{BASE}/files/{FILE['id']}/delete", json={"id": FILE["id"], "deleted": True})
    rsps.get(f"{BASE}/files/missing", status=404, json={"status": 404, "message": "Not Found"})
    assert upload_file(io.BytesIO(b"abc"), filename="a.txt", **CFG) == FILE
    body = post.calls[0].request.body
    assert b'name="file"; filename="a.txt"' in body and b"abc" in body and b'name="purpose"' in body
    assert files(**CFG) == [FILE]
    assert file(FILE["id"], **CFG) == FILE
    assert file_content(FILE["id"], **CFG) == b"abc"
    assert content.calls[0].request.headers["Accept"] == "application/jpg, */*"
    assert delete_file(FILE["id"], **CFG) == {"id": FILE["id"], "deleted": True}
    with pytest.raises(NotFoundError):
        file("missing", **CFG)


# -- shortcuts, async, provider ------------------------------------------------------------


def test_shortcuts_share_one_session_and_token(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    config = emu.client_config()
    sent = count_sends(monkeypatch, shared_session(Config.resolve(**config)))
    assert [m["id"] for m in models(**config)][:1] == ["GigaChat"]
    assert tokens_count(["abc"], **config) == [1]
    assert balance(**config) == fixture_balance()
    assert emu.oauth_calls == 1
    assert len(sent) == 4  # OAuth, models, tokens/count, balance: all on the one shared session


def test_session_and_configuration_are_exclusive(session: Session) -> None:
    with pytest.raises(TypeError, match="not both"):
        models(session=session, api_key=KEY)


def test_async_versions(emu: Emulator) -> None:
    config = emu.client_config()

    async def main() -> List[Any]:
        uploaded = await aio.upload_file(io.BytesIO(b"data"), filename="d.txt", **config)
        results = await asyncio.gather(
            aio.models(**config), aio.model("GigaChat", **config), aio.embeddings(["a"], **config),
            aio.tokens_count(["abcdefghi"], **config), aio.balance(**config), aio.files(**config),
            aio.file(uploaded["id"], **config), aio.file_content(uploaded["id"], **config),
        )
        deleted = await aio.delete_file(uploaded["id"], **config)
        return [uploaded, *results, deleted]

    uploaded, listing, one, vectors, counts, left, stored, same, content, deleted = asyncio.run(main())
    assert [m["id"] for m in listing] == [i for i, _ in emu.model_list()]
    assert one["id"] == "GigaChat"
    assert vectors.vectors == [embedding_vector("a")]
    assert counts == [2]
    assert left == fixture_balance()
    assert stored == [uploaded] and same == uploaded
    assert content == b"data"
    assert deleted == {"id": uploaded["id"], "deleted": True}


def test_async_with_a_session_and_errors(emu: Emulator, session: Session) -> None:
    emu.postpaid = True
    assert asyncio.run(aio.models(session=session))[0]["id"] == "GigaChat"
    with pytest.raises(PermissionDeniedError):
        asyncio.run(aio.balance(session=session))
    with pytest.raises(NotFoundError):
        asyncio.run(aio.model("Nope", session=session))


def test_provider_lists_models_through_models(emu: Emulator) -> None:
    from gigachat_lite import GigaChat

    config = emu.client_config()
    ids = GigaChat.get_models(api_key=config["api_key"], base_url=config["base_url"], auth_url=config["auth_url"])
    assert ids == [i for i, kind in emu.model_list() if kind == "chat"]  # issue 10: no Embeddings
    assert api_calls(emu) == ["GET /api/v1/models"]


def test_async_stream_function_call(session: Session) -> None:
    async def main() -> Any:
        stream = aio.chat(WEATHER["messages"], functions=WEATHER["functions"], session=session)
        chunks = [chunk async for chunk in stream]
        return chunks, stream.function_call, stream.function_result({"t": 1})

    chunks, call, messages = asyncio.run(main())
    assert chunks == []
    assert call["name"] == "fc"
    assert messages[0]["function_call"] == call and messages[1] == {"role": "function", "name": "fc", "content": '{"t": 1}'}
