"""gigachat_lite.GigaChat keeps gpt4free's provider contract (and fixes its faults)."""

from __future__ import annotations

import asyncio
from typing import Iterator, List

import pytest
import requests

from gigachat_lite import GigaChat, MissingAuthError, Session
from gigachat_lite.emulator import Emulator


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(keys=("key-one", "key-two")) as server:
        yield server


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> Emulator:
    monkeypatch.setenv("GIGACHAT_BASE_URL", emu.base_url)
    monkeypatch.setenv("GIGACHAT_AUTH_URL", emu.auth_url)
    return emu


def collect(agen) -> List[str]:  # type: ignore[no-untyped-def]
    async def main() -> List[str]:
        return [chunk async for chunk in agen]

    return asyncio.run(main())


def test_class_attributes_of_the_contract() -> None:
    assert GigaChat.working and GigaChat.needs_auth and GigaChat.supports_stream
    assert GigaChat.supports_message_history and GigaChat.supports_system_message
    assert GigaChat.default_model == "GigaChat"
    assert GigaChat.models == ["GigaChat-2", "GigaChat-2-Pro", "GigaChat-2-Max", "GigaChat", "GigaChat-Pro", "GigaChat-Max"]
    assert GigaChat.url.startswith("https://")
    assert GigaChat.RUSSIAN_CA_CERT.startswith("-----BEGIN CERTIFICATE-----")
    assert GigaChat().RUSSIAN_CA_CERT == GigaChat.RUSSIAN_CA_CERT
    assert GigaChat.access_token == "" and GigaChat.token_expires_at == 0


@pytest.mark.parametrize(
    "given,expected",
    [("", "GigaChat"), (None, "GigaChat"), ("auto", "GigaChat"), ("GigaChat-Pro", "GigaChat-Pro"),
     ("gigachat-2-max", "GigaChat-2-Max"), ("GigaChat:latest", "GigaChat"), ("GigaChat-Plus", "GigaChat"),
     ("2-Pro", "GigaChat-2-Pro"), ("Some-Future-Model", "Some-Future-Model")],
)
def test_get_model_rules(given: str, expected: str) -> None:
    assert GigaChat.get_model(given) == expected


def test_async_for_and_async_with_forms(env: Emulator) -> None:
    messages = [{"role": "user", "content": "Привет"}]
    assert "".join(collect(GigaChat.create_async_generator("GigaChat:latest", messages, api_key="key-one"))) == "Echo: Привет"

    async def with_form() -> str:
        async with GigaChat.create_async_generator(model="GigaChat-Pro", messages=messages, api_key="key-one") as response:
            return "".join([chunk async for chunk in response])

    assert asyncio.run(with_form()) == "Echo: Привет"
    assert env.requests[-1].json["model"] == "GigaChat-Pro"


def test_aclose_is_available(env: Emulator) -> None:
    async def main() -> str:
        gen = GigaChat.create_async_generator("GigaChat", [{"role": "user", "content": "hi"}], api_key="key-one")
        first = await gen.__anext__()
        await gen.aclose()
        return first

    assert asyncio.run(main())


def test_create_completion_is_a_plain_generator(env: Emulator) -> None:
    gen = GigaChat.create_completion("GigaChat", [{"role": "user", "content": "hi"}], api_key="key-one")
    assert "".join(gen) == "Echo: hi"
    non_stream = GigaChat.create_completion("GigaChat", [{"role": "user", "content": "hi"}], stream=False, api_key="key-one")
    assert list(non_stream) == ["Echo: hi"]
    assert "stream" not in env.requests[-1].json


def test_gpt4free_keywords_never_reach_the_body(env: Emulator) -> None:
    gen = GigaChat.create_completion(
        "GigaChat", [{"role": "user", "content": "hi"}], api_key="key-one",
        provider="GigaChat", ignore_stream=True, media=[("x", "y")], conversation=object(), stream_timeout=5,
        web_search=True, temperature=0.5, max_tokens=50,
    )
    assert "".join(gen) == "Echo: hi"
    body = env.requests[-1].json
    assert set(body) == {"model", "messages", "stream", "temperature", "max_tokens"}


def test_update_interval_is_sent_when_set(env: Emulator) -> None:
    "".join(GigaChat.create_completion("GigaChat", [{"role": "user", "content": "x"}], api_key="key-one", update_interval=0.3))
    assert env.requests[-1].json["update_interval"] == 0.3


def test_content_parts_become_text(env: Emulator) -> None:
    msgs = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}, {"type": "text", "text": "b"}]}]
    assert "".join(GigaChat.create_completion("GigaChat", msgs, api_key="key-one")) == "Echo: ab"


def test_missing_auth_before_any_request(env: Emulator) -> None:
    before = len(env.requests)
    with pytest.raises(MissingAuthError):
        collect(GigaChat.create_async_generator("GigaChat", [{"role": "user", "content": "hi"}]))
    assert len(env.requests) == before


def test_each_key_has_its_own_token_and_access_token_is_per_caller(env: Emulator) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    "".join(GigaChat.create_completion("GigaChat", msgs, api_key="key-one"))
    token_one = GigaChat.access_token
    assert token_one and GigaChat.token_expires_at > 10**12
    "".join(GigaChat.create_completion("GigaChat", msgs, api_key="key-two"))
    token_two = GigaChat.access_token
    assert token_two and token_two != token_one
    bearers = {r.headers["Authorization"] for r in env.requests[-4:] if r.path.endswith("/chat/completions")}
    assert bearers == {f"Bearer {token_one}", f"Bearer {token_two}"}

    seen_elsewhere: List[str] = []
    import contextvars

    contextvars.Context().run(lambda: seen_elsewhere.append(GigaChat.access_token))
    assert seen_elsewhere == [""]


def test_connector_accepts_a_session_and_refuses_aiohttp_like_objects(env: Emulator) -> None:
    with Session(**env.client_config()) as s:
        out = collect(GigaChat.create_async_generator("GigaChat", [{"role": "user", "content": "c"}], connector=s))
        assert "".join(out) == "Echo: c"
    plain = requests.Session()
    out = collect(GigaChat.create_async_generator("GigaChat", [{"role": "user", "content": "p"}], api_key="key-one", connector=plain))
    assert "".join(out) == "Echo: p"

    class BaseConnector:  # what aiohttp users would pass
        pass

    with pytest.raises(TypeError, match="requests.Session"):
        GigaChat.create_async_generator("GigaChat", [{"role": "user", "content": "x"}], api_key="key-one", connector=BaseConnector())


def test_proxy_is_used(env: Emulator) -> None:
    gen = GigaChat.create_completion("GigaChat", [{"role": "user", "content": "x"}], api_key="key-one", proxy="http://127.0.0.1:9", max_retries=0)
    from gigachat_lite import APIConnectionError

    with pytest.raises(APIConnectionError, match="proxy"):
        list(gen)


def test_get_models_live_and_static(env: Emulator) -> None:
    live = GigaChat.get_models(api_key="key-one")
    assert "GigaChat-2-Max" in live and any(r.path.endswith("/models") for r in env.requests)
    assert GigaChat.get_models() == GigaChat.models  # no key anywhere: the static list
