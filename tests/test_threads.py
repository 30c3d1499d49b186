"""The threads API (issue 22): ``session.threads``, ``gigachat_lite.threads`` and ``aio.threads``
against the emulator, streams included; the recorded replies (``fixtures/threads``, real
traffic: v1-framed streams with ``usage`` in every chunk) read into the typed results; bad
input refused before any request."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, Iterator, List

import pytest
import responses

import gigachat_lite
from gigachat_lite import (
    BadRequestError, NotFoundError, Session, Thread, ThreadMessages, ThreadReply, ThreadRun, ThreadStream, aio,
)
from gigachat_lite.emulator import Emulator

from conftest import BASE, fixture_json, fixture_text

pytestmark = pytest.mark.gigachat_emulator(piece_size=4)  # a fresh one per test: threads are kept between calls
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
def session(emu: Emulator) -> Iterator[Session]:
    with Session(**emu.client_config()) as s:
        yield s


def last_request(emu: Emulator) -> Any:
    return [r for r in emu.requests if "/oauth" not in r.path][-1]


def test_a_conversation_in_a_thread(session: Session, emu: Emulator) -> None:
    helper = session.assistants.create("GigaChat-Pro", "helper", instructions="Be brief")
    first = session.threads.run_messages(["Привет"], assistant_id=helper.assistant_id)
    assert isinstance(first, ThreadReply) and isinstance(first, gigachat_lite.ChatReply)
    assert first.text == "Echo: Привет" and list(first) == ["Echo: Привет"] and first.finish_reason == "stop"
    assert first.thread_id and first.message_id and first.usage and first.usage["total_tokens"] > 0
    assert first.model == "GigaChat-Pro:" + first.model.split(":")[1] and first.raw["object"] == "threads.messages.run"
    thread_id = first.thread_id

    added = session.threads.add_message(thread_id, "What next?")
    assert isinstance(added, ThreadMessages) and added.thread_id == thread_id and len(added) == 1
    assert added[0].message_id and added[0].role is None and added[0].created_at

    started = session.threads.run(thread_id, temperature=0.5, limit=3)
    assert isinstance(started, ThreadRun) and (started.status, started.thread_id) == ("in_progress", thread_id)
    assert last_request(emu).json == {"temperature": 0.5, "limit": 3, "thread_id": thread_id, "assistant_id": None}
    status = session.threads.get_run(thread_id)
    assert status.status == "ready" and status.model == "GigaChat-Pro"
    assert [(m.role, m.content) for m in status.messages] == [("user", "What next?"), ("assistant", "Echo: What next?")]

    again = session.threads.rerun_messages(thread_id)
    assert again.text == "Echo: What next?" and again.message_id != status.messages[-1].message_id

    messages = session.threads.get_messages(thread_id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Привет"), ("assistant", "Echo: Привет"), ("user", "What next?"), ("assistant", "Echo: What next?")]
    assert messages[-1].message_id == again.message_id and messages[-1].finish_reason == "stop"
    assert [m.content for m in session.threads.get_messages(thread_id, limit=2)] == ["What next?", "Echo: What next?"]

    (listed,) = session.threads.list(assistants_ids=[helper.assistant_id])
    assert isinstance(listed, Thread) and (listed.thread_id, listed.assistant_id) == (thread_id, helper.assistant_id)
    assert (listed.status, listed.run_lock, listed.model) == ("ready", False, "GigaChat-Pro")
    assert session.threads.get(thread_id).raw == listed.raw
    assert session.threads.delete(thread_id) is True
    assert session.threads.retrieve([thread_id]) == []
    with pytest.raises(NotFoundError):
        session.threads.get(thread_id)
    with pytest.raises(NotFoundError, match="No such thread"):
        session.threads.run_messages(["again"], thread_id=thread_id)


def test_new_threads(session: Session, emu: Emulator) -> None:
    empty = session.threads.create()
    assert isinstance(empty, Thread) and empty.thread_id and last_request(emu).json == {}
    added = session.threads.add_messages(empty.thread_id, ["one", {"role": "user", "content": "two"}])
    assert added.thread_id == empty.thread_id and len(added.messages) == 2
    reply = session.threads.rerun_messages  # a thread never run has nothing to rerun: the server's 422
    with pytest.raises(BadRequestError):
        reply(empty.thread_id)
    # No thread: a new one, with the session's model unless another is named.
    fresh = session.threads.add_messages(None, ["hello"])
    assert fresh.thread_id != empty.thread_id
    assert last_request(emu).json == {"thread_id": None, "assistant_id": None, "model": "GigaChat",
                                      "messages": [{"role": "user", "content": "hello"}]}
    pro = session.threads.run_messages("hello", model="GigaChat-Pro")
    assert session.threads.get(pro.thread_id).model == "GigaChat-Pro"
    assert {t.thread_id for t in session.threads.list()} == {empty.thread_id, fresh.thread_id, pro.thread_id}
    assert len(session.threads.list(limit=1)) == 1


def test_streams(session: Session, emu: Emulator) -> None:
    first = session.threads.run_messages(["Hi"], model="GigaChat-Pro")
    stream = session.threads.run_messages_stream(["Tell me more"], thread_id=first.thread_id, update_interval=1)
    assert isinstance(stream, ThreadStream) and isinstance(stream, gigachat_lite.ChatStream)
    assert stream.message_id is None  # nothing read yet
    chunks = list(stream)
    assert "".join(chunks) == stream.text == "Echo: Tell me more" and len(chunks) > 1
    assert stream.thread_id == first.thread_id and stream.finish_reason == "stop"
    # Each chunk carries its own usage (the first the prompt, each piece one token): the stream adds them up.
    assert stream.usage is not None and stream.usage["completion_tokens"] == len(chunks)
    assert stream.usage["total_tokens"] == stream.usage["prompt_tokens"] + len(chunks)
    assert stream.usage_raw == {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1}
    assert last_request(emu).json == {"thread_id": first.thread_id, "assistant_id": None, "model": None,
                                      "messages": [{"role": "user", "content": "Tell me more"}],
                                      "update_interval": 1, "stream": True}
    assert last_request(emu).headers["Accept"] == "text/event-stream"
    stored = session.threads.get_messages(first.thread_id)
    assert (stored[-1].message_id, stored[-1].content) == (stream.message_id, "Echo: Tell me more")

    with session.threads.rerun_messages_stream(first.thread_id, max_tokens=100) as rerun:
        assert "".join(rerun) == "Echo: Tell me more"
    assert rerun.thread_id == first.thread_id and rerun.message_id not in (None, stream.message_id)

    session.threads.add_message(first.thread_id, "And now?")
    plain = session.threads.run_stream(first.thread_id)
    assert "".join(plain) == "Echo: And now?" and plain.thread_id == first.thread_id and plain.usage


def test_a_function_round_trip_in_a_thread(session: Session, emu: Emulator) -> None:
    asked = session.threads.run_messages(["Call get_weather for Moscow"], model="GigaChat-Pro", functions=[WEATHER])
    assert asked.finish_reason == "function_call" and asked.function_call is not None
    assert asked.function_call["name"] == "get_weather" and asked.functions_state_id
    # The thread already holds the call: only the function's answer goes back.
    answer = asked.function_result({"temperature": -3})
    assert answer == [{"role": "function", "name": "get_weather", "content": '{"temperature": -3}'}]
    done = session.threads.run_messages(answer, thread_id=asked.thread_id, functions=[WEATHER])
    assert done.text == 'Function get_weather returned: {"temperature": -3}'
    streamed = session.threads.run_messages_stream(["Call get_weather for Kazan"], thread_id=asked.thread_id,
                                                   functions=[WEATHER], function_call={"name": "get_weather"})
    assert streamed.function_result("sunny") == [{"role": "function", "name": "get_weather", "content": '"sunny"'}]
    assert streamed.finish_reason == "function_call" and streamed.thread_id == asked.thread_id
    roles = [m.role for m in session.threads.get_messages(asked.thread_id)]
    assert roles == ["user", "assistant", "function", "assistant", "user", "assistant"]


def test_module_namespace_uses_the_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    reply = gigachat_lite.threads.run_messages(["from env"])
    assert reply.text == "Echo: from env"
    assert [t.thread_id for t in gigachat_lite.threads.list()] == [reply.thread_id]
    monkeypatch.setenv("GIGACHAT_MODEL", "GigaChat-Pro")  # resolved per call
    assert gigachat_lite.threads.get(gigachat_lite.threads.run_messages("x").thread_id).model == "GigaChat-Pro"


def test_aio(session: Session, emu: Emulator) -> None:
    threads = aio.AsyncThreads(session)

    async def main() -> Dict[str, Any]:
        first = await threads.run_messages(["Привет"], model="GigaChat-Pro")
        stream = threads.run_messages_stream(["Ещё"], thread_id=first.thread_id)
        assert (stream.thread_id, stream.message_id, stream.usage) == (None, None, None)  # not started yet
        chunks = [chunk async for chunk in stream]
        with pytest.raises(ValueError, match="thread_id must be a non-empty str"):
            threads.run_stream("")  # checked on the loop, when called: nothing was started
        await threads.add_message(first.thread_id, "Дальше")
        plain = [chunk async for chunk in threads.run_stream(first.thread_id)]
        async with threads.rerun_messages_stream(first.thread_id) as rerun:
            again = [chunk async for chunk in rerun]
        gathered = await asyncio.gather(threads.get_messages(first.thread_id), threads.get_run(first.thread_id),
                                        threads.list(), threads.retrieve([first.thread_id]))
        started = await threads.run(first.thread_id)
        deleted = await threads.delete(first.thread_id)
        return {"first": first, "stream": stream, "chunks": chunks, "plain": plain, "rerun": rerun, "again": again,
                "gathered": gathered, "started": started, "deleted": deleted}

    got = asyncio.run(main())
    first, stream = got["first"], got["stream"]
    assert first.text == "Echo: Привет" and "".join(got["chunks"]) == "Echo: Ещё"
    assert (stream.thread_id, stream.finish_reason) == (first.thread_id, "stop") and stream.message_id
    assert stream.usage["completion_tokens"] == len(got["chunks"])
    assert "".join(got["plain"]) == "Echo: Дальше" and "".join(got["again"]) == "Echo: Дальше"
    assert got["rerun"].thread_id == first.thread_id
    messages, status, listed, retrieved = got["gathered"]
    assert [m.content for m in messages][-1] == "Echo: Дальше" and status.status == "ready"
    assert [t.thread_id for t in listed] == [t.thread_id for t in retrieved] == [first.thread_id]
    assert got["started"].status == "in_progress" and got["deleted"] is True


def test_aio_shared_namespace(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)

    async def main() -> List[str]:
        reply = await aio.threads.run_messages("async env")
        return [chunk async for chunk in aio.threads.rerun_messages_stream(reply.thread_id)]

    assert "".join(asyncio.run(main())) == "Echo: async env"


@pytest.mark.slow
@pytest.mark.parametrize("call,error,match", [
    (lambda t: t.run_messages([]), ValueError, "messages is empty"),
    (lambda t: t.run_messages(["ok", ""]), ValueError, r"messages\[1\] is an empty str"),
    (lambda t: t.run_messages([{"role": "robot", "content": "x"}]), ValueError, r"messages\[0\]\['role'\] must be one of"),
    (lambda t: t.run_messages([{"role": "user", "content": 5}]), TypeError, r"messages\[0\]\['content'\] must be a str"),
    (lambda t: t.run_messages([{"role": "user", "content": "x", "attachments": "f1"}]), TypeError, "attachments"),
    (lambda t: t.run_messages(["x"], thread_id="t1", model="GigaChat-Pro"), ValueError, "model= is for a new thread"),
    (lambda t: t.run_messages(["x"], assistant_id="a1", model="GigaChat-Pro"), ValueError, "model= is for a new thread"),
    (lambda t: t.run_messages(["x"], temperature="hot"), TypeError, "temperature must be a finite number"),
    (lambda t: t.run_messages(["x"], top_p=2), ValueError, "top_p must be"),
    (lambda t: t.run_messages(["x"], limit=0), ValueError, "limit must be >= 1"),
    (lambda t: t.run_messages(["x"], functions=[{"description": "?"}]), ValueError, "functions"),
    (lambda t: t.run_messages(["x"], function_call="always"), ValueError, "function_call must be"),
    (lambda t: t.run_messages(["x"], stream=True), TypeError, "unknown run option 'stream'"),
    (lambda t: t.run_messages_stream(["x"], update_interval=-1), ValueError, "update_interval must be"),
    (lambda t: t.run("", temperature=0.5), ValueError, "thread_id must be a non-empty str"),
    (lambda t: t.run("t1", assistant_id=5), TypeError, "assistant_id must be a str"),
    (lambda t: t.run_stream("t1", flags="x"), TypeError, "flags must be a list of str"),
    (lambda t: t.rerun_messages("t1", max_tokens=1.5), TypeError, "max_tokens must be an int"),
    (lambda t: t.rerun_messages_stream(None), TypeError, "thread_id must be a str"),
    (lambda t: t.list(assistants_ids="a1"), TypeError, "assistants_ids must be a list of str ids"),
    (lambda t: t.list(limit=True), TypeError, "limit must be an int"),
    (lambda t: t.get_messages("t1", before=0), ValueError, "before must be >= 1"),
    (lambda t: t.retrieve([]), ValueError, "threads_ids is empty"),
    (lambda t: t.retrieve(["t1", None]), TypeError, r"threads_ids\[1\] must be a str"),
    (lambda t: t.add_message("t1", 5), TypeError, "message must be a str or a message dict"),
    (lambda t: t.add_messages(None, [{"role": "user", "content": "x", "extra": object()}]), TypeError, "messages cannot be sent as JSON"),
    (lambda t: t.delete(" "), ValueError, "thread_id must be a non-empty str"),
    (lambda t: t.get_run(["t1"]), TypeError, "thread_id must be a str"),
])
def test_bad_input_is_refused_before_any_request(session: Session, emu: Emulator, call: Any, error: type, match: str) -> None:
    before = len(emu.requests)
    with pytest.raises(error, match=match):
        call(session.threads)
    assert len(emu.requests) == before


# -- the recorded replies --------------------------------------------------------------------


TOKEN = "test-access-token"
RUN_STREAM = "threads/post_thread_messages_run.stream"
RERUN_STREAM = "threads/post_thread_messages_rerun.stream"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def recorded() -> gigachat_lite.Threads:
    return Session(access_token=TOKEN, base_url=BASE).threads


def chunks_of(name: str) -> List[Dict[str, Any]]:
    return [json.loads(line[6:]) for line in fixture_text(name).splitlines() if line.startswith("data: {")]


def sent(rsps: responses.RequestsMock) -> Any:
    return json.loads(rsps.calls[-1].request.body)  # type: ignore[arg-type]


def test_recorded_threads_and_messages(rsps: responses.RequestsMock, recorded: gigachat_lite.Threads) -> None:
    rsps.add("GET", BASE + "/threads", json=fixture_json("threads/get_threads.json"))
    rsps.add("POST", BASE + "/threads/retrieve", json=fixture_json("threads/post_threads_retrieve.json"))
    rsps.add("GET", BASE + "/threads/messages", json=fixture_json("threads/get_threads_messages.json"))
    rsps.add("POST", BASE + "/threads/messages", json=fixture_json("threads/post_threads_messages.json"))
    rsps.add("POST", BASE + "/threads/delete", body=fixture_text("threads/post_threads_delete.txt"))
    listed = recorded.list()
    assert [t.thread_id for t in listed] == [t["id"] for t in fixture_json("threads/get_threads.json")["threads"]]
    assert (listed[0].model, listed[0].status, listed[0].run_lock, listed[0].created_at, listed[0].assistant_id) == (
        "GigaChat-Pro", "ready", False, 1715684634, None)
    (one,) = recorded.retrieve(["1715fc00-8ca8-40f2-8a97-371a9f26a163"])
    assert one.assistant_id == "c795ebec-bf23-469d-983d-0b53e5244a29" and one.updated_at == 1720624694
    messages = recorded.get_messages("fc4a58e8-1410-4684-b473-066eabeca000")
    assert messages.thread_id == "fc4a58e8-1410-4684-b473-066eabeca000"
    question, answer = messages
    assert (question.role, question.content, question.model) == ("user", "Какой окрас кота?", "GigaChat-Pro")
    assert question.attachments == [{"file_id": "7ec30261-5360-4b12-9e9f-408bc481db51",
                                     "name": "1695931383_gas-kvas-com-p-kartinki-s-kotami-9.jpeg"}]
    assert (answer.role, answer.finish_reason, answer.created_at, answer.attachments) == ("assistant", "stop", 1715126200, [])
    added = recorded.add_message("93d6b96b-ae36-4be6-ac3a-44cee7613c3a", "hello")
    assert (added.thread_id, added[0].message_id, added[0].created_at) == (
        "93d6b96b-ae36-4be6-ac3a-44cee7613c3a", "baf19b28-e6d0-4fd0-a3b4-2d30ed687d64", 1715685479)
    assert recorded.delete("93d6b96b-ae36-4be6-ac3a-44cee7613c3a") is True  # an empty 200, as recorded


def test_recorded_runs(rsps: responses.RequestsMock, recorded: gigachat_lite.Threads) -> None:
    rsps.add("POST", BASE + "/threads/run", json=fixture_json("threads/post_threads_run.json"))
    rsps.add("GET", BASE + "/threads/run", json=fixture_json("threads/get_threads_run.json"))
    rsps.add("POST", BASE + "/threads/messages/run", json=fixture_json("threads/post_thread_messages_run.json"))
    rsps.add("POST", BASE + "/threads/messages/rerun", json=fixture_json("threads/post_thread_messages_rerun.json"))
    started = recorded.run("93d6b96b-ae36-4be6-ac3a-44cee7613c3a")
    assert (started.status, started.created_at, started.messages) == ("in_progress", 1715685511, [])
    status = recorded.get_run("fc4a58e8-1410-4684-b473-066eabeca000")
    assert (status.status, status.updated_at, status.model, len(status.messages)) == ("ready", 1715126200, "GigaChat-Pro", 2)
    reply = recorded.run_messages(["Привет"], model="GigaChat-Pro")
    assert sent(rsps) == {"thread_id": None, "assistant_id": None, "model": "GigaChat-Pro",
                          "messages": [{"role": "user", "content": "Привет"}]}
    assert reply.text == "Здравствуйте! Я могу вам чем-нибудь помочь?" and reply.finish_reason == "stop"
    assert (reply.thread_id, reply.message_id) == ("b549e2ec-a691-409d-aa6f-ff6a1271db47", "4c600221-1aaa-4c9d-9edb-572e465f4ee8")
    assert reply.usage == {"prompt_tokens": 12, "completion_tokens": 15, "total_tokens": 27}
    assert (reply.model, reply.created) == ("GigaChat-Pro:2.2.25.3", 1715686918)
    assert reply.raw == fixture_json("threads/post_thread_messages_run.json")
    again = recorded.rerun_messages("228d95e6-be1e-44a4-9bc0-dee90f00dc32")
    assert again.message_id == "337f0998-3194-40cf-a66b-7e6709db356c" and again.text == reply.text


@pytest.mark.parametrize("name", [RUN_STREAM, RERUN_STREAM])
def test_recorded_streams(rsps: responses.RequestsMock, recorded: gigachat_lite.Threads, name: str) -> None:
    path = "/threads/messages/run" if name == RUN_STREAM else "/threads/messages/rerun"
    rsps.add("POST", BASE + path, body=fixture_text(name), content_type="text/event-stream")
    chunks = chunks_of(name)
    if name == RUN_STREAM:
        stream = recorded.run_messages_stream(["Привет"], thread_id=chunks[0]["thread_id"])
    else:
        stream = recorded.rerun_messages_stream(chunks[0]["thread_id"])
    text = "".join(stream)
    assert text == "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) and len(text) > 50
    assert (stream.thread_id, stream.message_id) == (chunks[0]["thread_id"], chunks[0]["message_id"])
    assert stream.finish_reason == "stop" and stream.model == "GigaChat-Pro:2.2.25.3"
    # Every chunk's own usage, added up.
    assert stream.usage == {key: sum(c["usage"][key] for c in chunks) for key in ("prompt_tokens", "completion_tokens", "total_tokens")}
    assert stream.usage_raw == chunks[-1]["usage"]
    if name == RUN_STREAM:
        assert stream.usage == {"prompt_tokens": 64, "completion_tokens": 31, "total_tokens": 95}


def test_a_reply_that_is_not_a_thread_reply_is_refused(rsps: responses.RequestsMock, recorded: gigachat_lite.Threads) -> None:
    rsps.add("POST", BASE + "/threads/messages/rerun", json={"thread_id": "t1", "choices": []})
    rsps.add("GET", BASE + "/threads", json={"data": []})
    rsps.add("GET", BASE + "/threads/run", json={"thread_id": "t1"})
    with pytest.raises(gigachat_lite.InvalidResponseError, match="no message"):
        recorded.rerun_messages("t1")
    with pytest.raises(gigachat_lite.InvalidResponseError, match="no 'threads' list"):
        recorded.list()
    with pytest.raises(gigachat_lite.InvalidResponseError, match="no status"):
        recorded.get_run("t1")


def test_a_stream_that_is_not_an_event_stream_is_refused(rsps: responses.RequestsMock, recorded: gigachat_lite.Threads) -> None:
    rsps.add("POST", BASE + "/threads/run", json=fixture_json("threads/post_threads_run.json"))
    with pytest.raises(gigachat_lite.StreamError, match="expected a text/event-stream reply, got 'application/json'"):
        recorded.run_stream("93d6b96b-ae36-4be6-ac3a-44cee7613c3a")
