"""gigachat_lite.GigaChat keeps gpt4free's provider contract (and fixes its faults)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pathlib
import subprocess
import sys
import threading
from typing import List

import pytest
import requests

import gigachat_lite
from gigachat_lite import GigaChat, MissingAuthError, Session
from gigachat_lite.emulator import Emulator
from gigachat_lite.provider import messages_from_openai


pytestmark = pytest.mark.gigachat_emulator(shared=True, keys=("key-one", "key-two"))


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
    # Where no call was made yet (a new thread: this one may have called already).
    assert in_a_fresh_thread(lambda: (GigaChat.access_token, GigaChat.token_expires_at)) == ("", 0)


@pytest.mark.parametrize(
    "given,expected",
    [("", "GigaChat"), (None, "GigaChat"), ("auto", "GigaChat"), ("GigaChat-Pro", "GigaChat-Pro"),
     ("gigachat-2-max", "GigaChat-2-Max"), ("GigaChat:latest", "GigaChat"), ("GigaChat-Plus", "GigaChat"),
     ("gigachat-plus", "GigaChat"), ("GIGACHAT:LATEST", "GigaChat"),
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
        provider="GigaChat", ignore_stream=True, media=None, conversation=object(), stream_timeout=5,
        web_search=True, temperature=0.5, max_tokens=50,
    )
    assert "".join(gen) == "Echo: hi"
    body = env.requests[-1].json
    assert set(body) == {"model", "messages", "stream", "temperature", "max_tokens"}


def test_update_interval_is_sent_when_set(env: Emulator) -> None:
    "".join(GigaChat.create_completion("GigaChat", [{"role": "user", "content": "x"}], api_key="key-one", update_interval=0.3))
    assert env.requests[-1].json["update_interval"] == 0.3


def test_content_parts_become_text(env: Emulator) -> None:
    # Image parts are uploaded and attached (test_attachments.py); text parts are joined.
    msgs = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
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

    # Another thread (another caller) never sees this thread's token.
    seen_elsewhere: List[str] = []
    other = threading.Thread(target=lambda: seen_elsewhere.append(GigaChat.access_token))
    other.start()
    other.join()
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
    assert "Embeddings" in [m[0] for m in env.model_list()] and "Embeddings" not in live  # chat models only
    assert GigaChat.get_models() == GigaChat.models  # no key anywhere: the static list


def in_a_fresh_thread(function):  # type: ignore[no-untyped-def]
    """Run ``function`` in a new thread (no token seen there yet) and return its result."""
    result: List[object] = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    thread.join(30)
    assert result, "the thread failed"
    return result[0]


def test_seed_example_shows_the_token_asyncio_run_obtained(env: Emulator) -> None:
    def seed() -> object:
        gigachat = GigaChat()

        async def main() -> None:
            async with GigaChat.create_async_generator(
                model="GigaChat:latest", messages=[{"role": "user", "content": "Привет"}], api_key="key-one"
            ) as response:
                async for _ in response:
                    pass

        assert gigachat.access_token == "" and gigachat.token_expires_at == 0
        asyncio.run(main())
        return gigachat.access_token, gigachat.token_expires_at

    token, expires_at = in_a_fresh_thread(seed)
    assert token and env.requests[-1].headers["Authorization"] == f"Bearer {token}"
    assert expires_at > 10**12
    assert in_a_fresh_thread(lambda: GigaChat.access_token) == ""  # another thread: never


def test_concurrent_tasks_with_different_keys_see_only_their_own_token(env: Emulator) -> None:
    def run() -> object:
        async def main() -> List[str]:
            done = {"key-one": asyncio.Event(), "key-two": asyncio.Event()}

            async def call(key: str, sibling: str) -> str:
                async for _ in GigaChat.create_async_generator("GigaChat", [{"role": "user", "content": key}], api_key=key):
                    await asyncio.sleep(0)
                done[key].set()
                await done[sibling].wait()  # the sibling has its own token by now
                return GigaChat.access_token

            async def idle() -> str:
                for event in done.values():
                    await event.wait()
                return GigaChat.access_token

            return list(await asyncio.gather(call("key-one", "key-two"), call("key-two", "key-one"), idle()))

        return asyncio.run(main())

    one, two, idle = in_a_fresh_thread(run)
    last_two = [r for r in env.requests if r.path.endswith("/chat/completions")][-2:]
    sent = {r.json["messages"][0]["content"]: r.headers["Authorization"] for r in last_two}
    assert sent == {"key-one": f"Bearer {one}", "key-two": f"Bearer {two}"} and one != two
    assert idle == ""


# gpt4free made unimportable, as on a machine without it.
_NO_G4F = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "g4f" or name.startswith("g4f."):
            raise ImportError("no g4f here")

sys.meta_path.insert(0, Block())
"""

_STANDALONE = """
import asyncio, sys
import gigachat_lite
assert "g4f" not in sys.modules
GigaChat = gigachat_lite.GigaChat
assert GigaChat.__mro__[1:] == (object,), GigaChat.__mro__
messages = [{"role": "user", "content": "hi"}]
chunks = list(GigaChat.create_completion("gigachat-plus", messages, api_key="key-one", tools=[
    {"type": "function", "function": {"name": "f"}}], tool_choice="none"))

async def main():
    return [c async for c in GigaChat.create_async_generator("GigaChat", messages, api_key="key-one")]

print(chunks, asyncio.run(main()), bool(GigaChat.access_token))
"""


def _python(code: str, emu: Emulator) -> str:
    package_root = pathlib.Path(gigachat_lite.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(package_root), "GIGACHAT_BASE_URL": emu.base_url, "GIGACHAT_AUTH_URL": emu.auth_url}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_without_gpt4free_the_provider_works_alone(emu: Emulator) -> None:
    assert _python(_NO_G4F + _STANDALONE, emu) == "['Echo: hi'] ['Echo: hi'] True"


@pytest.mark.slow
def test_import_gigachat_lite_does_not_import_gpt4free(emu: Emulator) -> None:
    code = "import sys, gigachat_lite\nassert 'g4f' not in sys.modules\ngigachat_lite.GigaChat\nprint('g4f' in sys.modules)"
    installed = importlib.util.find_spec("g4f") is not None
    assert _python(code, emu) == str(installed)  # the first use of the provider may import it


def test_openai_tool_turns_become_gigachat_function_turns() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    state = {**call, "id": "5b0d3c1e-7d4f-4a51-9e36-1c2f0a9b8e77"}
    out = messages_from_openai([
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": None, "tool_calls": [call], "reasoning_content": ""},
        # gpt4free may set "name" from the id; the call knows the real one.
        {"role": "tool", "tool_call_id": "call_1", "name": "call_1", "content": "plain text"},
        {"role": "assistant", "content": "", "tool_calls": [state]},
        {"role": "tool", "tool_call_id": state["id"], "content": '{"t": 5}'},
    ])
    assert out == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "function_call": {"name": "f", "arguments": {"a": 1}}},
        {"role": "function", "name": "f", "content": '{"result": "plain text"}'},  # GigaChat takes a JSON object
        {"role": "assistant", "content": "", "function_call": {"name": "f", "arguments": {"a": 1}},
         "functions_state_id": state["id"]},
        {"role": "function", "name": "f", "content": '{"t": 5}'},
    ]


@pytest.mark.parametrize(
    "messages,match",
    [([{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f"}}] * 2}], r"messages\[0\]: v1 takes one function call"),
     ([{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nobody", "content": "1"}], r"messages\[1\]: a tool result"),
     ([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}], r"messages\[0\]: arguments is not JSON")],
)
def test_tool_turns_gigachat_cannot_take_are_refused_before_any_request(env: Emulator, messages: object, match: str) -> None:
    before = len(env.requests)
    with pytest.raises(ValueError, match=match):
        GigaChat.create_completion("GigaChat", messages, api_key="key-one")
    assert len(env.requests) == before
