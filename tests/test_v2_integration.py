"""The v2 client against the emulator over TLS on loopback (skipped until the emulator serves v2).

The emulator's v2 is built on another branch; these run as soon as it
answers ``POST /api/v2/chat/completions`` and check the client end to end:
streams and replies, reasoning kept apart, structured output, a function
round trip, built-in tools with a generated file downloaded, ai/check and
functions/convert, sync and async.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List

import pytest

from gigachat_lite import APIError, Session, aio
from gigachat_lite import ChatReplyV2, ChatStreamV2
from gigachat_lite.emulator import Emulator


pytestmark = pytest.mark.gigachat_emulator(shared=True)


@pytest.fixture
def session(emu: Emulator) -> Iterator[Session]:
    with Session(api_version="v2", **emu.client_config()) as s:
        try:
            s.chat("ping", stream=False, max_tokens=5)
        except APIError as exc:
            pytest.skip(f"the emulator does not serve v2 yet ({exc.status_code})")
        yield s


def test_stream_and_reply(session: Session) -> None:
    stream = session.chat("Привет")
    assert isinstance(stream, ChatStreamV2)
    chunks = list(stream)
    assert chunks and all(isinstance(c, str) and c for c in chunks)
    assert stream.finish_reason == "stop" and stream.text == "".join(chunks)
    assert stream.usage is not None and stream.usage["total_tokens"] == stream.usage["prompt_tokens"] + stream.usage["completion_tokens"]
    reply = session.chat("Привет", stream=False)
    assert isinstance(reply, ChatReplyV2) and reply.text == stream.text and reply.request_id


def test_reasoning_is_kept_apart(session: Session) -> None:
    stream = session.chat("Почему небо голубое?", reasoning_effort="high")
    events = list(stream.iter_events())
    reasoning = "".join(piece for kind, piece in events if kind == "reasoning")
    answer = "".join(piece for kind, piece in events if kind == "text")
    assert reasoning and reasoning == stream.reasoning and answer == stream.text
    assert reasoning not in answer
    reply = session.chat("Почему небо голубое?", reasoning_effort="high", stream=False)
    assert reply.reasoning == reasoning and reply.text == answer


@dataclass
class Person:
    name: str
    age: int


def test_structured_output(session: Session) -> None:
    person = session.parse("Кто ты?", Person)
    assert isinstance(person, Person) and isinstance(person.age, int)
    assert isinstance(session.parse("Код заявки", {"type": "regex", "regex": r"[A-Z]{3}-\d{4}"}), str)


def test_function_round_trip(session: Session) -> None:
    weather: Dict[str, Any] = {"name": "get_weather", "description": "Погода",
                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                              "required": ["city"]}}
    history: List[Any] = [{"role": "user", "content": "Погода в Москве?"}]
    reply = session.chat(history, stream=False, tools=[weather], tool_config="get_weather")
    assert reply.finish_reason == "function_call" and reply.function_call["name"] == "get_weather"
    assert reply.tools_state_id
    history += reply.function_result({"temperature": -5})
    final = session.chat(history, stream=False, tools=[weather])
    assert final.finish_reason == "stop" and final.text


def test_builtin_tools_and_a_generated_file(session: Session) -> None:
    search = session.chat("Новости Python", stream=False, tools=["web_search"], tool_config="web_search")
    assert search.text and search.tools_state_id
    image = session.chat("Нарисуй кота", stream=False, tools=["image_generate"], tool_config="image_generate")
    assert image.files and image.files[0]["id"]
    assert len(image.download()) > 0
    for tool in ("code_interpreter", "url_content_extraction"):
        assert session.chat("https://example.com 2+2", stream=False, tools=[tool], tool_config=tool).text


def test_ai_check_and_functions_convert(session: Session) -> None:
    assert session.ai_check("Какой-то текст")["category"] in ("ai", "human", "mixed")
    spec = {"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "paths": {"/sms": {"post": {
        "operationId": "send_sms", "summary": "Send an SMS", "responses": {"200": {"description": "ok"}}}}}}
    assert isinstance(session.functions_convert(spec), list)


def test_async(session: Session) -> None:
    async def main() -> Any:
        stream = aio.chat("Привет", session=session)
        text = "".join([chunk async for chunk in stream])
        assert text and stream.finish_reason == "stop"
        return await aio.parse("Кто ты?", Person, session=session)

    assert isinstance(asyncio.run(main()), Person)
