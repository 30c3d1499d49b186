"""Conformance, issue 22: the official SDK 0.2.4a1's ``client.assistants.*`` and
``client.threads.*`` (and ``a_assistants``/``a_threads``) run unchanged against the
emulator. Over plain HTTP and over TLS.
"""

import asyncio
from typing import Any, List

import pytest

from gigachat_lite.emulator import Emulator, Fault
from test_emulator_sdk_today import settings
from test_emulator_sdk import clean_env  # noqa: F401 (autouse fixture: no GIGACHAT_* leaks in)

gigachat = pytest.importorskip("gigachat")
exceptions = pytest.importorskip("gigachat.exceptions")
chat_models = pytest.importorskip("gigachat.models.chat")
thread_models = pytest.importorskip("gigachat.models.threads")

pytestmark = [
    pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning"),
    pytest.mark.parametrize("gigachat_emulator", [{}, dict(tls=True)], ids=["http", "https"], indirect=True),
]
WEATHER = chat_models.Function(name="get_weather", description="Weather in a city",
                               parameters={"type": "object", "properties": {"city": {"type": "string"}}})


def texts(chunks: List[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks)


def test_assistants(emu):
    with gigachat.GigaChat(**settings(emu)) as client:
        uploaded = client.upload_file(("guide.txt", b"Be kind."), purpose="assistant")
        created = client.assistants.create(model="GigaChat-Pro", name="helper", instructions="Be brief",
                                           description="d", file_ids=[uploaded.id_], metadata={"team": 7},
                                           functions=[WEATHER])
        listed = client.assistants.get()
        one = client.assistants.get(created.assistant_id)
        updated = client.assistants.update(assistant_id=created.assistant_id, name="helper-2")
        removed = client.assistants.delete_file(created.assistant_id, uploaded.id_)
        after = client.assistants.get(created.assistant_id).data[0]
        with pytest.raises(exceptions.NotFoundError):
            client.assistants.create(model="Nope", name="x")
        deleted = client.assistants.delete(created.assistant_id)
        with pytest.raises(exceptions.NotFoundError):
            client.assistants.get(created.assistant_id)
    (assistant,) = listed.data
    assert one.data == listed.data and assistant.assistant_id == created.assistant_id
    assert (assistant.model, assistant.name, assistant.instructions, assistant.description) == (
        "GigaChat-Pro", "helper", "Be brief", "d")
    assert [(f.file_id, f.name) for f in assistant.files] == [(uploaded.id_, "guide.txt")]  # files, beside file_ids
    assert assistant.metadata == {"team": 7} and [f.name for f in assistant.functions] == ["get_weather"]
    assert (updated.name, updated.instructions, updated.metadata) == ("helper-2", "Be brief", {"team": 7})
    assert (removed.file_id, removed.deleted) == (uploaded.id_, True) and after.files == []
    assert (deleted.assistant_id, deleted.deleted) == (created.assistant_id, True)
    sent = next(r.json for r in emu.requests if r.method == "POST" and r.path == "/v1/assistants")
    assert sent == {"model": "GigaChat-Pro", "name": "helper", "description": "d",
                                    "instructions": "Be brief", "file_ids": [uploaded.id_], "metadata": {"team": 7},
                                    "functions": [WEATHER.model_dump(exclude_none=True, by_alias=True)]}


@pytest.mark.slow
def test_threads(emu):
    with gigachat.GigaChat(**settings(emu)) as client:
        assistant = client.assistants.create(model="GigaChat-Pro", name="helper", instructions="Be brief")
        first = client.threads.run_messages(["Привет"], assistant_id=assistant.assistant_id)
        thread_id = first.thread_id
        added = client.threads.add_message(thread_id, "What next?")
        started = client.threads.run(thread_id, thread_options=thread_models.ThreadRunOptions(temperature=0.5, limit=3))
        status = client.threads.get_run(thread_id)
        streamed = list(client.threads.run_stream(thread_id))
        again = client.threads.rerun_messages(thread_id)
        rerun_streamed = list(client.threads.rerun_messages_stream(thread_id))
        more = list(client.threads.run_messages_stream(["More please"], thread_id=thread_id, update_interval=1))
        messages = client.threads.get_messages(thread_id)
        last_two = client.threads.get_messages(thread_id, limit=2)
        empty = client.threads.create_thread()
        added_many = client.threads.add_messages(empty, ["one", {"role": "user", "content": "two"}])
        listed = client.threads.list()
        by_assistant = client.threads.list(assistants_ids=[assistant.assistant_id])
        retrieved = client.threads.retrieve([empty, thread_id])
        gone = client.threads.delete(empty)
        with pytest.raises(exceptions.NotFoundError):
            client.threads.get_messages(empty)
    assert (first.object_, first.model, first.message.content) == ("threads.messages.run", "GigaChat-Pro:emulator",
                                                                  "Echo: Привет")
    assert first.usage.prompt_tokens == 1 + 1  # the assistant's instructions, then the message
    assert added.thread_id == thread_id and len(added.messages) == 1
    assert (started.status, started.thread_id) == (thread_models.ThreadStatus.IN_PROGRESS, thread_id)
    assert status.status == thread_models.ThreadStatus.READY
    assert [(m.role, m.content) for m in status.messages] == [("user", "What next?"), ("assistant", "Echo: What next?")]
    assert texts(streamed) == "Echo: What next?" and streamed[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is not None and c.thread_id == thread_id for c in streamed)
    assert again.message.content == "Echo: What next?" and texts(rerun_streamed) == "Echo: What next?"
    assert texts(more) == "Echo: More please"
    # run and run_stream each answered "What next?"; the rerun replaced the second answer
    assert [m.content for m in messages.messages] == [
        "Привет", "Echo: Привет", "What next?", "Echo: What next?", "Echo: What next?", "More please",
        "Echo: More please"]
    assert [m.content for m in last_two.messages] == ["More please", "Echo: More please"]
    assert len(added_many.messages) == 2
    assert {t.id_ for t in listed.threads} == {thread_id, empty}
    assert [t.id_ for t in by_assistant.threads] == [thread_id]
    assert [t.id_ for t in retrieved.threads] == [empty, thread_id]
    assert retrieved.threads[1].assistant_id == assistant.assistant_id and retrieved.threads[0].model == "GigaChat"
    assert gone is True


@pytest.mark.slow
def test_thread_options_reach_the_run(emu):
    options = thread_models.ThreadRunOptions(max_tokens=1, functions=[WEATHER], function_call="none")
    with gigachat.GigaChat(**settings(emu)) as client:
        cut = client.threads.run_messages(["get_weather in Kazan"], model="GigaChat-2", thread_options=options)
        called = client.threads.run_messages(["get_weather please"], thread_id=cut.thread_id,
                                             thread_options=thread_models.ThreadRunOptions(functions=[WEATHER]))
        with pytest.raises(exceptions.UnprocessableEntityError):
            client.threads.run_messages(["x"], thread_id=cut.thread_id,
                                        thread_options=thread_models.ThreadRunOptions(limit=0))
    assert (cut.message.content, cut.finish_reason) == ("Echo: ge", "length")
    assert called.finish_reason == "function_call"
    assert called.message.function_call.name == "get_weather" and called.message.functions_state_id


@pytest.mark.slow
def test_async_assistants_and_threads(emu):
    async def run() -> Any:
        async with gigachat.GigaChat(**settings(emu)) as client:
            assistant = await client.a_assistants.create(model="GigaChat-Max", name="async")
            reply = await client.a_threads.run_messages(["hi"], assistant_id=assistant.assistant_id)
            chunks = [c async for c in client.a_threads.run_messages_stream(["again"], thread_id=reply.thread_id)]
            await client.a_threads.add_message(reply.thread_id, "last")
            await client.a_threads.run(reply.thread_id)
            status = await client.a_threads.get_run(reply.thread_id)
            listed = await client.a_assistants.get()
            deleted = await client.a_threads.delete(reply.thread_id)
            return reply, chunks, status, listed, deleted

    reply, chunks, status, listed, deleted = asyncio.run(run())
    assert reply.message.content == "Echo: hi" and texts(chunks) == "Echo: again"
    assert [m.content for m in status.messages] == ["last", "Echo: last"]
    assert listed.data[0].threads_count == 1 and deleted is True


@pytest.mark.slow
def test_sdk_sees_errors_and_faults(emu):
    emu.add_fault(Fault(path="threads/messages/run", status=429, retry_after="1", times=1))
    with gigachat.GigaChat(**settings(emu, max_retries=0)) as client:
        with pytest.raises(exceptions.RateLimitError):
            client.threads.run_messages(["hi"], model="GigaChat")
        with pytest.raises(exceptions.NotFoundError):
            client.threads.run("no-such-thread")
        with pytest.raises(exceptions.NotFoundError):
            client.assistants.update(assistant_id="nope", name="x")
        assert client.threads.run_messages(["hi"], model="GigaChat").message.content == "Echo: hi"


def test_emulator_state_is_inspectable(emu: Emulator):
    with gigachat.GigaChat(**settings(emu)) as client:
        reply = client.threads.run_messages(["hi"], model="GigaChat")
    thread = emu.threads.get(reply.thread_id)
    assert thread is not None and [m.content for m in thread.messages] == ["hi", "Echo: hi"]
    assert emu.assistants.listing() == []
