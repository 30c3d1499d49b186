"""gigachat_lite.GigaChat inside gpt4free's own clients, against the emulator (issue 10).

Every way a gpt4free user reaches a provider: ``Client``/``AsyncClient``
(``create`` with and without ``stream=True``, ``AsyncClient...stream``), the
legacy ``ChatCompletion.create``/``create_async``, and ``RetryProvider``/
``IterListProvider``; the key from ``api_key=`` and from ``GIGACHAT_API_KEY``;
the server's usage, finish reason and tool calls as gpt4free's types.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any, Dict, List

import pytest

g4f = pytest.importorskip("g4f")
g4f.debug.version_check = False  # it would ask PyPI for a newer gpt4free: tests stay on loopback

from g4f.client import AsyncClient, Client  # noqa: E402
from g4f.providers.base_provider import AsyncGeneratorProvider, ProviderModelMixin  # noqa: E402
from g4f.providers.retry_provider import IterListProvider, ProviderCircuitBreaker, RetryProvider  # noqa: E402

from gigachat_lite import AuthenticationError, GigaChat, MissingAuthError  # noqa: E402
from gigachat_lite.emulator import Emulator  # noqa: E402
from gigachat_lite.emulator.replies import usage as emulator_usage  # noqa: E402

KEYS = ("key-one", "key-two", "key-env", "key-dict", "key-retry")
HELLO = [{"role": "user", "content": "Привет, как дела сегодня?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Погода в городе",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


pytestmark = pytest.mark.gigachat_emulator(shared=True, keys=KEYS)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emu: Emulator, tmp_path: pathlib.Path) -> Emulator:
    monkeypatch.setenv("GIGACHAT_BASE_URL", emu.base_url)
    monkeypatch.setenv("GIGACHAT_AUTH_URL", emu.auth_url)
    for name in ("GIGACHAT_CREDENTIALS", "GIGACHAT_API_KEY", "G4F_TOOL_EMULATION"):
        monkeypatch.delenv(name, raising=False)
    # gpt4free writes a usage log under its cookies folder after every call.
    monkeypatch.setattr(g4f.cookies.CookiesConfig, "cookies_dir", str(tmp_path))
    ProviderCircuitBreaker.reset()
    return emu


def chats(emu: Emulator) -> List[Any]:
    return [r for r in emu.requests if r.path.endswith("/chat/completions")]


def server_usage(emu: Emulator, text: str) -> Dict[str, int]:
    """The counts the emulator sent for its last chat reply (it derives them from body and text)."""
    return emulator_usage(chats(emu)[-1].json, text, emu.piece_size)


def assert_usage(got: Any, expected: Dict[str, int]) -> None:
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (
        expected["prompt_tokens"], expected["completion_tokens"], expected["total_tokens"])


# -- the class ----------------------------------------------------------------------------


def test_a_real_gpt4free_provider() -> None:
    assert issubclass(GigaChat, AsyncGeneratorProvider) and issubclass(GigaChat, ProviderModelMixin)
    assert GigaChat.__name__ == "GigaChat" and GigaChat.get_parent() == "GigaChat"
    assert GigaChat.get_dict() == {"name": "GigaChat", "url": GigaChat.url, "label": "GigaChat"}
    assert {"model", "messages", "stream", "api_key"} <= set(GigaChat.get_parameters())
    assert GigaChat.supports_native_tools is True and GigaChat.needs_auth is True
    assert GigaChat().RUSSIAN_CA_CERT.startswith("-----BEGIN CERTIFICATE-----")  # instantiable: nothing abstract left
    assert GigaChat.get_model("gigachat-plus") == "GigaChat"


# -- g4f.client.Client and AsyncClient --------------------------------------------------------


def test_client_create(env: Emulator) -> None:
    reply = Client(provider=GigaChat, api_key="key-one").chat.completions.create(model="GigaChat-Pro", messages=HELLO)
    text = reply.choices[0].message.content
    assert text == "Echo: " + HELLO[0]["content"]
    assert reply.choices[0].finish_reason == "stop"
    assert_usage(reply.usage, server_usage(env, text))
    assert chats(env)[-1].json["model"] == "GigaChat-Pro" and "stream" not in chats(env)[-1].json


def test_client_create_stream(env: Emulator) -> None:
    chunks = list(Client(provider=GigaChat, api_key="key-one").chat.completions.create(
        model="GigaChat", messages=HELLO, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Echo: " + HELLO[0]["content"] and len(chunks) > 3
    assert chats(env)[-1].json["stream"] is True
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert_usage(chunks[-1].usage, server_usage(env, text))


def test_async_client_create_stream_and_stream_method(env: Emulator) -> None:
    client = AsyncClient(provider=GigaChat, api_key="key-one")

    async def main() -> List[Any]:
        whole = await client.chat.completions.create(model="GigaChat", messages=HELLO)
        assert_usage(whole.usage, server_usage(env, whole.choices[0].message.content))
        created = [c async for c in client.chat.completions.create(model="GigaChat", messages=HELLO, stream=True)]
        streamed = [c async for c in client.chat.completions.stream(messages=HELLO, model="GigaChat")]
        return [whole, created, streamed]

    whole, created, streamed = asyncio.run(main())
    assert whole.choices[0].message.content == "Echo: " + HELLO[0]["content"]
    for chunks in (created, streamed):
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert text == whole.choices[0].message.content
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert_usage(chunks[-1].usage, server_usage(env, text))


def test_usage_is_the_servers_not_gpt4free_estimate(env: Emulator) -> None:
    env.set_reply("x" * 400)  # gpt4free would guess 100 tokens (4 bytes each); the emulator counts 50
    try:
        reply = Client(provider=GigaChat, api_key="key-one").chat.completions.create(model="GigaChat", messages=HELLO)
    finally:
        env.set_reply(None)
    assert reply.usage.completion_tokens == 50 == server_usage(env, "x" * 400)["completion_tokens"]


# -- the key ---------------------------------------------------------------------------------


def oauth_keys(emu: Emulator) -> List[str]:
    return [r.headers["Authorization"] for r in emu.requests if r.path.endswith("/oauth")]


def test_api_key_of_the_client_reaches_the_provider(env: Emulator) -> None:
    Client(provider=GigaChat, api_key="key-two").chat.completions.create(model="GigaChat", messages=HELLO)
    assert oauth_keys(env)[-1] == "Basic key-two"
    with pytest.raises(AuthenticationError):
        Client(provider=GigaChat, api_key="not-a-key").chat.completions.create(model="GigaChat", messages=HELLO)
    Client(provider=GigaChat, api_key={"GigaChat": "key-dict", "Other": "x"}).chat.completions.create(
        model="GigaChat", messages=HELLO)
    assert oauth_keys(env)[-1] == "Basic key-dict"


def test_gigachat_api_key_through_gpt4free_key_loading(env: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from g4f.tools.auth import AuthManager

    before = len(env.requests)
    with pytest.raises(MissingAuthError):
        Client(provider=GigaChat).chat.completions.create(model="GigaChat", messages=HELLO)
    assert len(env.requests) == before  # refused before any request
    monkeypatch.setenv("GIGACHAT_API_KEY", "key-env")
    assert AuthManager.load_api_key(GigaChat) == "key-env"
    reply = Client(provider=GigaChat).chat.completions.create(model="GigaChat", messages=HELLO)
    assert reply.choices[0].message.content.startswith("Echo: ")
    assert oauth_keys(env)[-1] == "Basic key-env"


# -- the legacy ChatCompletion ------------------------------------------------------------------


def test_chat_completion_create_and_create_async(env: Emulator) -> None:
    expected = "Echo: " + HELLO[0]["content"]
    assert g4f.ChatCompletion.create("GigaChat", HELLO, provider=GigaChat, api_key="key-one") == expected
    streamed = list(g4f.ChatCompletion.create("GigaChat", HELLO, provider=GigaChat, api_key="key-one", stream=True))
    assert "".join(c for c in streamed if isinstance(c, str)) == expected
    assert "".join(str(c) for c in streamed) == expected  # gpt4free's extra objects print as ""

    async def main() -> List[str]:
        whole = await g4f.ChatCompletion.create_async("GigaChat", HELLO, provider=GigaChat, api_key="key-one")
        parts = g4f.ChatCompletion.create_async("GigaChat", HELLO, provider=GigaChat, api_key="key-one", stream=True)
        return [whole, "".join([str(c) async for c in parts])]

    assert asyncio.run(main()) == [expected, expected]


# -- retry providers --------------------------------------------------------------------------


class Failing(AsyncGeneratorProvider):
    """A provider that is down."""

    working = True
    calls = 0

    @classmethod
    async def create_async_generator(cls, model: str, messages: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        cls.calls += 1
        raise RuntimeError("Failing is down")
        yield ""  # an async generator


@pytest.mark.parametrize("kind", [RetryProvider, IterListProvider])
def test_retry_provider_skips_a_failing_provider_and_lands_on_gigachat(env: Emulator, kind: Any) -> None:
    Failing.calls = 0
    provider = kind([Failing, GigaChat], shuffle=False)
    reply = Client(provider=provider, api_key="key-retry").chat.completions.create(model="GigaChat", messages=HELLO)
    assert Failing.calls == 1
    text = reply.choices[0].message.content
    assert text == "Echo: " + HELLO[0]["content"]
    assert provider.last_provider is GigaChat
    assert_usage(reply.usage, server_usage(env, text))

    async def streamed() -> str:
        client = AsyncClient(provider=kind([Failing, GigaChat], shuffle=False), api_key="key-retry")
        return "".join([c.choices[0].delta.content or "" async for c in client.chat.completions.stream(HELLO, "GigaChat")])

    assert asyncio.run(streamed()) == text and Failing.calls == 2


# -- tools ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip_through_the_client(env: Emulator, stream: bool) -> None:
    client = Client(provider=GigaChat, api_key="key-one")
    messages: List[Dict[str, Any]] = [{"role": "user", "content": "Какая погода в Москве?"}]
    first = client.chat.completions.create(model="GigaChat", messages=messages, tools=[WEATHER], stream=stream)
    sent = chats(env)[-1].json
    assert "tools" not in sent and sent["functions"] == [WEATHER["function"]]
    if stream:
        chunks = list(first)
        calls = [call for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
        finish = chunks[-1].choices[0].finish_reason
    else:
        calls, finish = first.choices[0].message.tool_calls, first.choices[0].finish_reason
    assert finish == "tool_calls" and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": messages[0]["content"]}

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": "weather", "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": -5}'},
    ]
    second = client.chat.completions.create(model="GigaChat", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == 'Function weather returned: {"temperature": -5}'
    assert second.choices[0].finish_reason == "stop"
    body = chats(env)[-1].json
    assert body["messages"][1] == {"role": "assistant", "content": "", "functions_state_id": call.id,
                                   "function_call": {"name": "weather", "arguments": {"city": messages[0]["content"]}}}
    assert body["messages"][2] == {"role": "function", "name": "weather", "content": '{"temperature": -5}'}


@pytest.mark.parametrize(
    "choice,expected",
    [(None, None), ("auto", "auto"), ("none", "none"), ("required", {"name": "weather"}),
     ({"type": "function", "function": {"name": "weather"}}, {"name": "weather"})],
)
def test_tool_choice_becomes_function_call(env: Emulator, choice: Any, expected: Any) -> None:
    kwargs = {} if choice is None else {"tool_choice": choice}
    "".join(GigaChat.create_completion("GigaChat", HELLO, api_key="key-one", tools=[WEATHER], **kwargs))
    assert chats(env)[-1].json.get("function_call") == expected


@pytest.mark.parametrize(
    "tools,tool_choice,match",
    [([{"type": "web_search"}], None, r"tools\[0\]"), ([{"type": "function", "function": {}}], None, r"tools\[0\]"),
     ([WEATHER], "sometimes", "tool_choice"),
     ([WEATHER], {"type": "function", "function": {"name": "rain"}}, "'rain', which is not among the tools"),
     ({"type": "function"}, None, "tools must be a list")],
)
def test_bad_tools_are_refused_before_any_request(env: Emulator, tools: Any, tool_choice: Any, match: str) -> None:
    before = len(env.requests)
    with pytest.raises((TypeError, ValueError), match=match):
        GigaChat.create_completion("GigaChat", HELLO, api_key="key-one", tools=tools, tool_choice=tool_choice)
    assert len(env.requests) == before


def test_plain_callers_get_str_only_even_with_gpt4free_installed(env: Emulator) -> None:
    async def main() -> Any:
        stream = GigaChat.create_async_generator("GigaChat", [{"role": "user", "content": "weather?"}],
                                                 api_key="key-one", tools=[WEATHER])
        chunks = [c async for c in stream]
        return chunks, stream

    chunks, stream = asyncio.run(main())
    assert all(isinstance(c, str) for c in chunks)
    assert stream.finish_reason == "function_call" and stream.function_call["name"] == "weather"
    assert stream.usage["total_tokens"] > 0
    plain = list(GigaChat.create_completion("GigaChat", HELLO, api_key="key-one", stream=False))
    assert plain == ["Echo: " + HELLO[0]["content"]]
