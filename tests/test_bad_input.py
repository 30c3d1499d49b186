"""Bad input, end to end: every malformed call is refused locally, naming the bad item, before any request.

Each case runs through every entry point it applies to: ``chat()``,
``Session(...).chat()``, ``aio.chat()``, ``GigaChat.create_async_generator``
and ``GigaChat.create_completion``; the emulator must see nothing.
``CASES`` and :func:`run_case` are reused by ``scripts/reliability.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Type

import pytest

from gigachat_lite import MissingAuthError, Session, aio, chat
from gigachat_lite.emulator import Emulator

ENTRIES = ("chat", "session", "aio", "provider_async", "provider_completion")
PROVIDER = ("provider_async", "provider_completion")
CONFIG_KEYS = {"api_key", "access_token", "scope", "base_url", "auth_url", "ca_bundle", "verify", "cert", "proxy",
               "timeout", "max_retries"}
DROP = object()  # remove this key from the emulator's configuration
OK = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Case:
    name: str
    kwargs: Dict[str, Any] = field(default_factory=dict)
    messages: Any = None  # None: OK
    exc: Type[BaseException] = ValueError
    names: str = ""  # must appear in the message
    entries: Tuple[str, ...] = ENTRIES
    provider_exc: Optional[Type[BaseException]] = None  # when the gpt4free path differs only in type


NOT_PROVIDER = ("chat", "session", "aio")
CASES: List[Case] = [
    Case("messages None", messages=None, exc=TypeError, names="messages", entries=NOT_PROVIDER),
    Case("messages int", messages=42, exc=TypeError, names="messages"),
    Case("messages empty str", messages="   ", exc=ValueError, names="messages", entries=NOT_PROVIDER),
    Case("messages empty list", messages=[], exc=ValueError, names="messages"),
    Case("messages one dict", messages={"role": "user", "content": "x"}, exc=TypeError, names="messages"),
    Case("message not a dict", messages=["hi"], exc=TypeError, names="messages[0]"),
    Case("unknown role", messages=[{"role": "robot", "content": "x"}], exc=ValueError, names="messages[0]['role']"),
    Case("role missing", messages=[{"content": "x"}], exc=ValueError, names="messages[0]['role']"),
    Case("second message bad", messages=[{"role": "user", "content": "x"}, {"role": "user", "content": None}],
         exc=TypeError, names="messages[1]['content']"),
    Case("content int", messages=[{"role": "user", "content": 5}], exc=TypeError, names="messages[0]['content']"),
    # OpenAI-style text and image parts are taken (see test_attachments.py); a video is not.
    Case("content part unknown", messages=[{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "v"}}]}],
         exc=ValueError, names="messages[0].content[0]"),
    Case("attachments str", messages=[{"role": "user", "content": "x", "attachments": "file-id"}], exc=TypeError,
         names="attachments"),
    Case("model int", {"model": 5}, exc=TypeError, names="model"),
    Case("model empty", {"model": " "}, exc=ValueError, names="model", entries=NOT_PROVIDER),  # gpt4free: default
    Case("model empty string", {"model": ""}, exc=ValueError, names="model", entries=NOT_PROVIDER),  # was the default, silently
    Case("scope unknown", {"scope": "GIGACHAT_API_WRONG"}, exc=ValueError, names="scope"),
    Case("key not a str", {"api_key": 12345}, exc=TypeError, names="api_key"),
    Case("key with a newline", {"api_key": "abc\ndef"}, exc=ValueError, names="api_key"),
    Case("no key at all", {"api_key": DROP}, exc=MissingAuthError, names="api_key"),
    Case("timeout word", {"timeout": "soon"}, exc=ValueError, names="timeout"),
    Case("timeout triple", {"timeout": (1, 2, 3)}, exc=ValueError, names="timeout"),
    Case("timeout negative", {"timeout": -1}, exc=ValueError, names="timeout"),
    Case("max_retries negative", {"max_retries": -1}, exc=ValueError, names="max_retries"),
    Case("proxy without scheme", {"proxy": "localhost:3128"}, exc=ValueError, names="proxy"),
    Case("proxy int", {"proxy": 3128}, exc=TypeError, names="proxy"),
    Case("proxy bad port", {"proxy": "http://127.0.0.1:notaport"}, exc=ValueError, names="proxy"),
    Case("CA path missing", {"ca_bundle": "/no/such/bundle.pem"}, exc=ValueError, names="ca_bundle"),
    Case("base_url ftp", {"base_url": "ftp://127.0.0.1/api"}, exc=ValueError, names="base_url"),
    Case("verify maybe", {"verify": "maybe"}, exc=ValueError, names="verify"),
    Case("connector not a session", {"connector": object()}, exc=TypeError, names="connector"),
    Case("temperature hot", {"temperature": "hot"}, exc=TypeError, names="temperature"),
    Case("temperature zero", {"temperature": 0}, exc=ValueError, names="temperature"),
    Case("top_p above 1", {"top_p": 2}, exc=ValueError, names="top_p"),
    Case("max_tokens zero", {"max_tokens": 0}, exc=ValueError, names="max_tokens"),
    Case("max_tokens float", {"max_tokens": 1.5}, exc=TypeError, names="max_tokens"),
    Case("n bool", {"n": True}, exc=TypeError, names="n "),
    Case("repetition_penalty nan", {"repetition_penalty": float("nan")}, exc=TypeError, names="repetition_penalty"),
    Case("update_interval negative", {"update_interval": -1}, exc=ValueError, names="update_interval"),
    Case("profanity_check str", {"profanity_check": "yes"}, exc=TypeError, names="profanity_check"),
    Case("functions str", {"functions": "x"}, exc=TypeError, names="functions"),
    Case("functions without a name", {"functions": [{"description": "d"}]}, exc=ValueError, names="functions"),
    Case("function_call int", {"function_call": 5}, exc=ValueError, names="function_call"),
    Case("flags str", {"flags": "x"}, exc=TypeError, names="flags"),
    Case("stream yes", {"stream": "yes"}, exc=TypeError, names="stream", entries=NOT_PROVIDER),  # gpt4free: bool()
    Case("unknown keyword not JSON", {"foo": object()}, exc=TypeError, names="foo", entries=NOT_PROVIDER),
]


def call_entry(entry: str, case: Case, emu: Emulator) -> Any:
    config: Dict[str, Any] = dict(emu.client_config())
    kwargs = dict(case.kwargs)
    for key, value in list(kwargs.items()):
        if value is DROP:
            config.pop(key, None)
            del kwargs[key]
    messages = OK if case.messages is None and case.name != "messages None" else case.messages
    merged = {**config, **kwargs}  # the case's value replaces the emulator's
    if entry == "chat":
        return chat(messages, **merged)
    if entry == "aio":
        return aio.chat(messages, **merged)
    if entry == "session":
        settings = {k: v for k, v in merged.items() if k in CONFIG_KEYS}
        params = {k: v for k, v in merged.items() if k not in CONFIG_KEYS}
        with Session(**settings) as s:
            return s.chat(messages, **params)
    from gigachat_lite import GigaChat

    model = merged.pop("model", "GigaChat")
    api_key = merged.pop("api_key", None)
    method = GigaChat.create_async_generator if entry == "provider_async" else GigaChat.create_completion
    return method(model, messages, api_key=api_key, **merged)


def run_case(entry: str, case: Case, emu: Emulator) -> Tuple[bool, str]:
    """(refused as expected and locally, detail). Nothing is iterated: refusal must come at the call."""
    before = len(emu.requests)
    try:
        result = call_entry(entry, case, emu)
    except BaseException as exc:
        sent = len(emu.requests) - before
        expected = case.provider_exc if entry in PROVIDER and case.provider_exc else case.exc
        ok = type(exc) is expected or (isinstance(exc, expected) and expected is not MissingAuthError)
        ok = ok and case.names in str(exc) and "multiple values" not in str(exc) and sent == 0
        return ok, f"{type(exc).__name__}: {exc} (requests sent: {sent})"
    close = getattr(result, "close", None)
    if close is not None:
        close()
    return False, f"accepted: {result!r}"


def all_cases() -> List[Tuple[str, Case]]:
    return [(entry, case) for case in CASES for entry in case.entries]


pytestmark = pytest.mark.gigachat_emulator(shared=True)


@pytest.mark.parametrize("entry,case", all_cases(), ids=[f"{e}-{c.name}" for e, c in all_cases()])
def test_bad_input_is_refused_locally(entry: str, case: Case, emu: Emulator) -> None:
    ok, detail = run_case(entry, case, emu)
    assert ok, detail


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30 and len(all_cases()) >= 150


def test_a_good_call_through_every_entry_reaches_the_emulator(emu: Emulator) -> None:
    """The control: the same harness with nothing wrong does send (so 'no request' above means something)."""
    import asyncio
    import contextvars

    from gigachat_lite import GigaChat

    config = emu.client_config()
    before = len(emu.requests)
    assert "".join(chat(OK, **config)) == "Echo: hi"
    with Session(**config) as s:
        assert "".join(s.chat(OK)) == "Echo: hi"

    async def both() -> Tuple[str, str]:
        a = "".join([c async for c in aio.chat(OK, **config)])
        rest = dict(config)
        key = rest.pop("api_key")
        b = "".join([c async for c in GigaChat.create_async_generator("GigaChat", OK, api_key=key, **rest)])
        return a, b

    assert asyncio.run(both()) == ("Echo: hi", "Echo: hi")
    rest = dict(config)
    key = rest.pop("api_key")
    # In a copy of the context: the provider remembers the caller's last token there.
    completion = contextvars.copy_context().run(lambda: "".join(GigaChat.create_completion("GigaChat", OK, api_key=key, **rest)))
    assert completion == "Echo: hi"
    assert sum(1 for r in emu.requests[before:] if r.path.endswith("/chat/completions")) == 5
