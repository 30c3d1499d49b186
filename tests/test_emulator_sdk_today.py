"""Conformance, issue 21: the official SDK 0.2.4a1 runs unchanged against the emulator on
today's layout: base ``/v1`` (as ``https://api.giga.chat/v1``) with the default model
list, session ids with cached prompt tokens, the v2 field mapping, v1 reasoning, and
user/password auth. Each test runs over plain HTTP and over TLS with a throwaway CA.
"""

import asyncio
from typing import Any, Dict, List

import pytest

from gigachat_lite.emulator import Emulator
from test_emulator_sdk import clean_env  # noqa: F401 (autouse fixture: no GIGACHAT_* leaks in)

gigachat = pytest.importorskip("gigachat")
exceptions = pytest.importorskip("gigachat.exceptions")
context = pytest.importorskip("gigachat.context")
chat_models = pytest.importorskip("gigachat.models.chat")
pydantic = pytest.importorskip("pydantic")

USERS = {"alice": "wonder-land"}
MODEL = "GigaChat-3-Ultra"
LONG = "Answer briefly; this system-like prompt is the same on every call of the session."
# The default model list (no models=): what issue 21 asks of a plain Emulator().
pytestmark = [
    pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning"),
    pytest.mark.parametrize("gigachat_emulator", [dict(users=USERS), dict(tls=True, users=USERS)],
                            ids=["http", "https"], indirect=True),
]


def settings(emu: Emulator, **extra: Any) -> Dict[str, Any]:
    """The SDK pointed at ``emu`` the way it points at https://api.giga.chat/v1."""
    kwargs: Dict[str, Any] = dict(credentials=emu.api_key, base_url=emu.url + "/v1", auth_url=emu.auth_url,
                                  model=MODEL, timeout=10)
    if emu.ca_bundle:
        kwargs.update(verify_ssl_certs=True, ca_bundle_file=emu.ca_bundle)
    kwargs.update(extra)
    return kwargs


class City(pydantic.BaseModel):
    name: str
    population: int


def api_paths(emu: Emulator) -> List[str]:
    return [r.path.split("?")[0] for r in emu.requests if "/oauth" not in r.path]


@pytest.mark.slow
def test_the_v1_base_and_todays_models(emu):
    with gigachat.GigaChat(**settings(emu)) as client:
        created = client.chat.create("Say hello")
        streamed = list(client.chat.stream("Count to three"))
        _, city = client.chat.parse("Name a city", response_format=City)
        legacy = client.chat("Привет")  # the v1 contract on the same base
        models = [m.id_ for m in client.get_models().data]
    assert created.model == MODEL + ":emulator" and created.messages[0].content[0].text == "Echo: Say hello"
    assert "".join(c.messages[0].content[0].text for c in streamed[:-1]) == "Echo: Count to three"
    assert city == City(name="text", population=0)
    assert legacy.choices[0].message.content == "Echo: Привет" and legacy.model == MODEL + ":emulator"
    assert {"GigaChat-3-Ultra", "GigaChat-3-Pro", "GigaChat-3-Lightning", "GigaChat", "GigaChat-Pro",
            "GigaChat-Max", "GigaChat-2-Max"} <= set(models)
    assert api_paths(emu) == ["/v2/chat/completions"] * 3 + ["/v1/chat/completions", "/v1/models"]


@pytest.mark.slow
def test_session_id_reports_cached_prompt_tokens_on_both_contracts(emu):
    with gigachat.GigaChat(**settings(emu, session_id="sess-1")) as client:
        first = client.chat.create(LONG)
        second = client.chat.create(LONG)
        v1_first, v1_second = client.chat(LONG), client.chat(LONG)
        token = context.session_id_cvar.set("another-session")
        try:
            other = client.chat.create(LONG)
        finally:
            context.session_id_cvar.reset(token)
    tokens = first.usage.input_tokens
    assert first.usage.input_tokens_details.cached_tokens == 0
    assert second.usage.input_tokens == tokens and second.usage.input_tokens_details.cached_tokens == tokens - 1
    assert other.usage.input_tokens_details.cached_tokens == 0
    assert v1_first.usage.precached_prompt_tokens == tokens - 1  # v2's call of the same prompt is cached too
    assert (v1_second.usage.prompt_tokens, v1_second.usage.precached_prompt_tokens) == (1, tokens - 1)
    assert v1_second.usage.total_tokens == 1 + v1_second.usage.completion_tokens
    sent = [r.headers.get("X-Session-ID") for r in emu.requests]
    assert sent == [None] + ["sess-1"] * 4 + ["another-session"]  # not on the OAuth call
    assert first.x_headers["x-session-id"] == "sess-1"


@pytest.mark.slow
def test_async_session_cache(emu):
    async def run() -> Any:
        async with gigachat.GigaChat(**settings(emu, session_id="sess-a")) as client:
            await client.achat.create(LONG)
            chunks = [c async for c in client.achat.stream(LONG)]
            return chunks[-1].usage

    usage = asyncio.run(run())
    assert usage.input_tokens_details.cached_tokens == usage.input_tokens - 1 > 0


def test_the_v2_field_mapping(emu):
    tools = [{"functions": {"specifications": [
        {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}}]
    payload = {"messages": [{"role": "user", "content": "Why is the sky blue?"}], "temperature": 0.3,
               "reasoning": {"effort": "low", "max_tokens": 2}, "preset": "p1", "top_logprobs": 2,
               "parallel_tool_calls": True, "unnormalized_history": True, "profanity_check": True, "storage": True,
               "flags": ["preprocess"], "user_info": {"timezone": "Europe/Moscow"}, "tools": tools,
               "tool_config": {"mode": "none"}}
    with gigachat.GigaChat(**settings(emu)) as client:
        reply = client.chat.create(payload)
        follow = client.chat.create({"messages": [{"role": "user", "content": "And at night?"}],
                                     "storage": {"thread_id": reply.thread_id}})
        with pytest.raises(exceptions.UnprocessableEntityError) as refused:
            # additional_fields go to the top level as they are: the emulator names the mistake
            client.chat.create({"messages": [{"role": "user", "content": "hi"}], "additional_fields": {"top_p": 0.5}})
    sent = emu.requests[1].json
    assert sent["model_options"] == {"parallel_tool_calls": True, "temperature": 0.3,
                                     "reasoning": {"effort": "low", "max_tokens": 2}, "preset": "p1",
                                     "unnormalized_history": True, "top_logprobs": 2}
    assert (sent["disable_filter"], sent["storage"]) == (False, {}) and "profanity_check" not in sent
    message = reply.messages[0]
    assert message.content[0].text == "Echo: Why is the sky blue?"
    assert message.reasoning_content == "Reasoning with l"  # cut to its 2-token budget
    logprobs = message.content[0].logprobs
    assert len(logprobs) == 4 and [len(entry.top) for entry in logprobs] == [2] * 4  # a token each, top 2
    assert "".join(entry.chosen.token for entry in logprobs) == "Echo: Why is the sky blue?"
    assert reply.thread_id and reply.message_id and follow.thread_id == reply.thread_id
    assert follow.model == MODEL + ":emulator"  # the stored thread's model; the SDK sent none
    assert "top_p belongs in model_options on v2" in str(refused.value)


def test_client_profanity_check_setting_on_both_contracts(emu):
    with gigachat.GigaChat(**settings(emu, profanity_check=False)) as client:
        client.chat.create("hi")
        client.chat("hi")
    v2_body, v1_body = emu.requests[1].json, emu.requests[2].json
    assert v2_body["disable_filter"] is True and "profanity_check" not in v2_body
    assert v1_body["profanity_check"] is False


@pytest.mark.slow
def test_v1_reasoning_effort_and_budget(emu):
    request = chat_models.Chat(messages=[chat_models.Messages(role="user", content="Why?")],
                               reasoning_effort="xhigh", reasoning_max_tokens=3)
    with gigachat.GigaChat(**settings(emu)) as client:
        reply = client.chat(request)
        chunks = list(client.stream(request))
    assert emu.requests[1].json["reasoning_effort"] == "xhigh" and emu.requests[1].json["reasoning_max_tokens"] == 3
    assert reply.choices[0].message.reasoning_content == "Reasoning with xhigh eff"
    assert reply.choices[0].message.content == "Echo: Why?"
    assert "".join(c.choices[0].delta.reasoning_content or "" for c in chunks) == "Reasoning with xhigh eff"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: Why?"


def password_settings(emu: Emulator, password: str) -> Dict[str, Any]:
    # Password auth is served on the classic host only (api.giga.chat has no /token): base /api/v1.
    kwargs = settings(emu, user="alice", password=password, base_url=emu.base_url)
    del kwargs["credentials"]
    return kwargs


@pytest.mark.slow
def test_user_and_password(emu):
    with gigachat.GigaChat(**password_settings(emu, USERS["alice"])) as client:
        first = client.chat("hi")
        second = client.chat.create("hi")
        emu.revoke_tokens()
        third = client.chat("again")  # a 401, a new token, the call again
    assert (first.choices[0].message.content, second.messages[0].content[0].text) == ("Echo: hi", "Echo: hi")
    assert third.choices[0].message.content == "Echo: again"
    token_calls = [r for r in emu.requests if r.path == "/api/v1/token"]
    assert len(token_calls) == 2 and emu.users.logins("alice") == 2 and emu.oauth_calls == 0
    assert token_calls[0].body == b"" and token_calls[0].headers["Authorization"].startswith("Basic ")
    assert [r.path for r in emu.requests if "chat" in r.path] == [
        "/api/v1/chat/completions", "/api/v2/chat/completions", "/api/v1/chat/completions", "/api/v1/chat/completions"]
    with gigachat.GigaChat(**password_settings(emu, "wrong")) as client:
        with pytest.raises(exceptions.AuthenticationError):
            client.chat("hi")


def test_user_and_password_async(emu):
    async def run() -> Any:
        async with gigachat.GigaChat(**password_settings(emu, USERS["alice"])) as client:
            return await client.achat("hi"), await client.achat.create("hi")

    v1_reply, v2_reply = asyncio.run(run())
    assert v1_reply.choices[0].message.content == v2_reply.messages[0].content[0].text == "Echo: hi"
    assert emu.users.logins("alice") == 1
