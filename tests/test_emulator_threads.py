"""The emulator's assistants and threads APIs (issue 22), and chats stored in threads.

Raw HTTP against ``tests/data/fixtures/assistants`` and ``fixtures/threads`` (real
replies): the same keys in the same order (ours may add the fields the official SDK
reads), the thread streams' v1 framing with usage in every chunk, and the refusals.
The SDK's view is in ``test_emulator_sdk_threads.py``.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests

from gigachat_lite.emulator import Emulator
from test_emulator_v2 import TIMEOUT, bearer

FIXTURES = Path(__file__).parent / "data" / "fixtures"
MODEL = "GigaChat-Pro"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text("utf-8"))


def stream_fixture(name: str) -> List[Dict[str, Any]]:
    text = (FIXTURES / name).read_text("utf-8")
    assert text.rstrip().endswith("data: [DONE]")
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def keeps_order(ours: Dict[str, Any], real: Dict[str, Any]) -> bool:
    """Every recorded key is ours too, in the recorded order."""
    keys = [k for k in ours if k in real]
    return keys == list(real)


class Api:
    """Raw calls to one emulator under ``/api/v1`` with a bearer token."""

    def __init__(self, emu: Emulator) -> None:
        self.base, self.auth = emu.base_url, bearer(emu)

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.base + path, params=params, headers=self.auth, timeout=TIMEOUT)

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.base + path, json=body, headers=self.auth, timeout=TIMEOUT)

    def ok(self, path: str, body: Any = None, **params: Any) -> Any:
        response = self.get(path, **params) if body is None else self.post(path, body)
        assert response.status_code == 200, response.text
        return response.json()

    def refused(self, path: str, body: Any = None, **params: Any) -> Dict[str, Any]:
        response = self.get(path, **params) if body is None else self.post(path, body)
        assert response.status_code in (404, 422), response.text
        return {"status": response.status_code, "message": response.json()["message"]}

    def upload(self, name: str = "doc.txt") -> str:
        response = requests.post(self.base + "/files", files={"file": (name, b"hello", "text/plain")},
                                 data={"purpose": "assistant"}, headers=self.auth, timeout=TIMEOUT)
        return str(response.json()["id"])


@pytest.fixture
def api(emu: Emulator) -> Api:
    return Api(emu)


# -- assistants ---------------------------------------------------------------------------


def test_assistants_round_trip_in_the_recorded_shapes(api):
    file_id = api.upload("cat.jpeg")
    created = api.ok("/assistants", {"model": MODEL, "name": "lonely", "description": None, "instructions": "Assistant",
                                     "file_ids": [file_id], "metadata": {"test": 234}})
    assert list(created) == list(fixture("assistants/post_assistants.json"))
    listed = api.ok("/assistants")["data"]
    real = fixture("assistants/get_assistants.json")["data"][0]
    (ours,) = listed
    assert keeps_order(ours, real)
    assert ours["file_ids"] == [file_id] and ours["files"] == [{"file_id": file_id, "name": "cat.jpeg"}]  # both spellings
    assert (ours["assistant_id"], ours["model"], ours["metadata"], ours["threads_count"]) == (
        created["assistant_id"], MODEL, {"test": 234}, 0)
    assert "description" not in ours  # null means not given
    assert api.ok("/assistants", assistant_id=created["assistant_id"])["data"] == listed
    modified = api.ok("/assistants/modify", {"assistant_id": created["assistant_id"], "name": "lonely_assistant",
                                            "description": None, "instructions": None, "file_ids": None, "metadata": None})
    assert keeps_order(modified, fixture("assistants/post_assistant_modify.json"))
    assert (modified["name"], modified["instructions"], modified["file_ids"]) == ("lonely_assistant", "Assistant", [file_id])
    removed = api.ok("/assistants/files/delete", {"assistant_id": created["assistant_id"], "file_id": file_id})
    assert removed == {"file_id": file_id, "deleted": True}
    assert list(removed) == list(fixture("assistants/post_assistant_files_delete.json"))
    assert api.ok("/assistants")["data"][0]["files"] == []
    deleted = api.ok("/assistants/delete", {"assistant_id": created["assistant_id"]})
    assert deleted == {"assistant_id": created["assistant_id"], "deleted": True}
    assert api.ok("/assistants") == {"data": []}


def test_assistant_refusals_name_the_item(api):
    good = {"model": MODEL, "name": "n"}
    assert api.refused("/assistants", dict(good, model="Nope")) == {"status": 404, "message": "No such model"}
    assert api.refused("/assistants", {"model": MODEL})["message"] == "name is required"
    assert api.refused("/assistants", dict(good, name=""))["message"] == "name must be a non-empty string"
    assert api.refused("/assistants", dict(good, instructions=5))["message"] == "instructions must be a string"
    assert api.refused("/assistants", dict(good, metadata={str(n): n for n in range(17)}))["message"] == (
        "metadata holds at most 16 keys, got 17")
    assert api.refused("/assistants", dict(good, file_ids=["nope"])) == {"status": 404, "message": "No such file: nope"}
    assert api.refused("/assistants", dict(good, functions=[{"description": "x"}]))["message"] == (
        "functions[0] must be an object with a non-empty string name")
    assert api.refused("/assistants", assistant_id="nope") == {"status": 404, "message": "No such assistant"}
    assert api.refused("/assistants/modify", {"assistant_id": "nope"})["status"] == 404
    assert api.refused("/assistants/delete", {})["message"] == "assistant_id must be a non-empty string"
    kept = api.ok("/assistants", good)["assistant_id"]
    assert api.refused("/assistants/files/delete", {"assistant_id": kept, "file_id": "f"})["message"] == (
        "No such file in the assistant: f")
    wrong = requests.get(api.base + "/assistants/delete", headers=api.auth, timeout=TIMEOUT)
    assert (wrong.status_code, wrong.headers["Allow"]) == (405, "POST")


# -- threads ------------------------------------------------------------------------------


def test_threads_in_the_recorded_shapes(api):
    added = api.ok("/threads/messages", {"thread_id": None, "model": MODEL, "assistant_id": None, "messages": [
        # as the SDK's add_message sends it: every field, nulls and its odd id_ key included
        {"role": "user", "content": "Какой окрас кота?", "function_call": None, "name": None, "attachments": None,
         "data_for_context": None, "functions_state_id": None, "reasoning_content": None, "inline_data": None,
         "logprobs": None, "id_": None}]})
    assert list(added) == list(fixture("threads/post_threads_messages.json"))
    assert list(added["messages"][0]) == list(fixture("threads/post_threads_messages.json")["messages"][0])
    thread_id = added["thread_id"]
    (thread,) = api.ok("/threads")["threads"]
    assert list(thread) == list(fixture("threads/get_threads.json")["threads"][0])
    assert (thread["id"], thread["model"], thread["status"], thread["run_lock"]) == (thread_id, MODEL, "ready", False)
    started = api.ok("/threads/run", {"thread_id": thread_id, "assistant_id": None, "temperature": 0.5, "limit": 3})
    assert list(started) == list(fixture("threads/post_threads_run.json")) and started["status"] == "in_progress"
    run = api.ok("/threads/run", thread_id=thread_id)
    real = fixture("threads/get_threads_run.json")
    assert list(run) == list(real) and run["status"] == "ready"
    assert [m["role"] for m in run["messages"]] == ["user", "assistant"]
    assert run["messages"][1]["content"] == "Echo: Какой окрас кота?"
    assert [list(m) for m in run["messages"]] == [[k for k in m if k != "attachments"] for m in real["messages"]]
    listed = api.ok("/threads/messages", thread_id=thread_id)
    real = fixture("threads/get_threads_messages.json")
    assert list(listed) == list(real)
    assert [list(m) for m in listed["messages"]] == [[k for k in m if k != "attachments"] for m in real["messages"]]
    assert listed["messages"][1]["finish_reason"] == "stop" and listed["messages"][1]["model"] == MODEL
    completion = api.ok("/threads/messages/run", {"thread_id": thread_id, "assistant_id": None, "model": None,
                                                  "messages": [{"role": "user", "content": "Привет"}]})
    real = fixture("threads/post_thread_messages_run.json")
    assert list(completion) == list(real) and list(completion["message"]) == list(real["message"])
    assert list(completion["usage"]) == list(real["usage"])
    assert (completion["object"], completion["model"], completion["message"]["content"]) == (
        "threads.messages.run", MODEL + ":emulator", "Echo: Привет")
    again = api.ok("/threads/messages/rerun", {"thread_id": thread_id})
    assert list(again) == list(fixture("threads/post_thread_messages_rerun.json"))
    assert again["message"] == completion["message"] and again["message_id"] != completion["message_id"]
    assert [m["content"] for m in api.ok("/threads/messages", thread_id=thread_id)["messages"]] == [
        "Какой окрас кота?", "Echo: Какой окрас кота?", "Привет", "Echo: Привет"]  # the rerun replaced the reply
    retrieved = api.ok("/threads/retrieve", {"threads_ids": [thread_id, "unknown"]})
    assert [t["id"] for t in retrieved["threads"]] == [thread_id]
    deleted = requests.post(api.base + "/threads/delete", json={"thread_id": thread_id}, headers=api.auth, timeout=TIMEOUT)
    assert (deleted.status_code, deleted.content) == (200, (FIXTURES / "threads/post_threads_delete.txt").read_bytes())
    assert api.ok("/threads") == {"threads": []}


def stream(api: Api, path: str, body: Dict[str, Any]) -> List[Dict[str, Any]]:
    response = requests.post(api.base + path, json=body, headers=api.auth, timeout=TIMEOUT)
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.text.endswith("data: [DONE]\n\n") and "event:" not in response.text  # v1 framing
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]


@pytest.mark.slow
@pytest.mark.parametrize("path, fixture_name", [
    ("/threads/messages/run", "threads/post_thread_messages_run.stream"),
    ("/threads/messages/rerun", "threads/post_thread_messages_rerun.stream"),
])
def test_thread_streams_use_v1_framing_with_usage_in_every_chunk(api, path, fixture_name):
    thread_id = api.ok("/threads/messages/run", {"model": MODEL, "messages": [{"role": "user", "content": "hi there"}]})[
        "thread_id"]
    body = {"thread_id": thread_id, "stream": True, "update_interval": None}
    if path.endswith("/run"):
        body.update(messages=[{"role": "user", "content": "Tell me about LLM"}], assistant_id=None, model=None)
    chunks = stream(api, path, body)
    real = stream_fixture(fixture_name)
    assert all(list(c) == list(real[0]) for c in chunks)
    assert all(list(c["usage"]) == list(real[0]["usage"]) for c in chunks)
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    assert text == ("Echo: Tell me about LLM" if path.endswith("/run") else "Echo: hi there")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0].get("finish_reason") for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    # the first chunk carries the prompt, each piece one completion token
    assert chunks[0]["usage"]["prompt_tokens"] > 0 and all(c["usage"]["prompt_tokens"] == 0 for c in chunks[1:])
    assert all(c["usage"]["completion_tokens"] == 1 for c in chunks)
    assert {(c["thread_id"], c["message_id"], c["object"]) for c in chunks} == {
        (thread_id, chunks[0]["message_id"], "threads.messages.run")}
    listed = api.ok("/threads/messages", thread_id=thread_id)["messages"]
    assert listed[-1]["message_id"] == chunks[0]["message_id"] and listed[-1]["content"] == text


def test_a_thread_run_stream_and_its_function_call(api):
    assistant = api.ok("/assistants", {"model": MODEL, "name": "weather", "instructions": "Be brief",
                                       "functions": [{"name": "get_weather", "parameters": {"type": "object"}}]})
    thread = api.ok("/threads", {})
    assert (thread["model"], list(thread)) == ("GigaChat", list(fixture("threads/get_threads.json")["threads"][0]))
    api.ok("/threads/messages", {"thread_id": thread["id"], "messages": [{"role": "user", "content": "get_weather"}]})
    chunks = stream(api, "/threads/run", {"thread_id": thread["id"], "assistant_id": assistant["assistant_id"],
                                          "stream": True})
    (only,) = chunks  # the assistant's function, called in one chunk
    delta = only["choices"][0]["delta"]
    assert delta["function_call"] == {"name": "get_weather", "arguments": {}} and delta["functions_state_id"]
    assert only["choices"][0]["finish_reason"] == "function_call" and only["object"] == "threads.run"
    # the instructions count as prompt: "Be brief" + "get_weather"
    assert only["usage"]["prompt_tokens"] == 1 + 2
    assert api.ok("/threads", assistants_ids=assistant["assistant_id"])["threads"][0]["assistant_id"] == (
        assistant["assistant_id"])
    assert api.ok("/assistants")["data"][0]["threads_count"] == 1


def test_listing_limit_and_before(api):
    thread_id = api.ok("/threads/messages", {"model": MODEL, "messages": [
        {"role": "user", "content": str(n)} for n in range(5)]})["thread_id"]
    for _ in range(2):
        api.ok("/threads", {})
    assert [m["content"] for m in api.ok("/threads/messages", thread_id=thread_id, limit=2)["messages"]] == ["3", "4"]
    assert api.ok("/threads/messages", thread_id=thread_id, before=1)["messages"] == []  # created before 1970-01-01T00:00:01
    assert len(api.ok("/threads", limit=2)["threads"]) == 2 and len(api.ok("/threads")["threads"]) == 3
    assert api.ok("/threads", assistants_ids=["a1", "a2"]) == {"threads": []}


def test_thread_refusals(api):
    thread_id = api.ok("/threads", {})["id"]
    assert api.refused("/threads/messages", thread_id="nope") == {"status": 404, "message": "No such thread"}
    assert api.refused("/threads/run", thread_id=thread_id) == {"status": 404, "message": "The thread has not been run"}
    assert api.refused("/threads/run", {"thread_id": thread_id})["message"] == "the thread has no messages to run"
    assert api.refused("/threads/messages/rerun", {"thread_id": thread_id})["message"] == "the thread has no run to rerun"
    assert api.refused("/threads/messages", {"thread_id": thread_id, "messages": []})["message"] == (
        "messages must be a non-empty list")
    assert api.refused("/threads/messages", {"thread_id": thread_id, "messages": [{"role": "robot", "content": ""}]})[
        "message"] == "messages[0].role must be one of system, user, assistant, function"
    assert api.refused("/threads/messages", {"thread_id": thread_id, "messages": [
        {"role": "user", "content": "x", "attachments": ["f-1"]}]}) == {"status": 404, "message": "No such file: f-1"}
    assert api.refused("/threads/messages/run", {"model": "Nope", "messages": [{"role": "user", "content": "x"}]}) == {
        "status": 404, "message": "No such model"}
    assert api.refused("/threads/messages/run", {"assistant_id": "nope", "messages": [{"role": "user", "content": "x"}]}) == {
        "status": 404, "message": "No such assistant"}
    assert api.refused("/threads/messages/run", {"thread_id": thread_id, "temperature": "hot", "messages": [
        {"role": "user", "content": "x"}]})["message"] == "temperature must be a number"
    assert api.ok("/threads/messages", thread_id=thread_id)["messages"] == []  # a refused run added nothing
    assert api.refused("/threads/messages", thread_id=thread_id, limit="many")["message"] == (
        "limit must be a positive integer")
    assert api.refused("/threads/retrieve", {"threads_ids": "t1"})["message"] == "threads_ids must be a list of thread ids"
    assert api.refused("/threads/delete", {"thread_id": "nope"})["status"] == 404
    wrong = requests.get(api.base + "/threads/delete", headers=api.auth, timeout=TIMEOUT)
    assert (wrong.status_code, wrong.headers["Allow"]) == (405, "POST")


def test_concurrent_runs_on_one_thread_keep_each_turn_together(api):
    thread_id = api.ok("/threads", {})["id"]

    def run(number: int) -> str:
        body = {"thread_id": thread_id, "messages": [{"role": "user", "content": "turn %d" % number}]}
        return str(api.ok("/threads/messages/run", body)["message"]["content"])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(run, range(16)))
    assert answers == ["Echo: turn %d" % n for n in range(16)]
    listed = [m["content"] for m in api.ok("/threads/messages", thread_id=thread_id)["messages"]]
    assert len(listed) == 32
    assert all(listed[i + 1] == "Echo: " + listed[i] for i in range(0, 32, 2))  # no run saw another's message


# -- chats stored in threads (storage) and run by assistants -------------------------------


def v2(api: Api, body: Dict[str, Any], session: Optional[str] = None) -> Dict[str, Any]:
    headers = dict(api.auth, **({"X-Session-ID": session} if session else {}))
    response = requests.post(api.base.replace("/api/v1", "/api/v2") + "/chat/completions", json=body,
                             headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_v2_storage_keeps_the_conversation_in_a_thread(api):
    first = v2(api, {"model": "GigaChat-3-Ultra", "messages": [{"role": "user", "content": [{"text": "one"}]}],
                     "storage": {}})
    assert list(first) == ["model", "created_at", "messages", "message_id", "thread_id", "finish_reason", "usage"]
    follow = {"messages": [{"role": "user", "content": [{"text": "two"}]}], "storage": {"thread_id": first["thread_id"]}}
    second = v2(api, follow)  # no model: the thread's
    assert second["thread_id"] == first["thread_id"] and second["model"] == "GigaChat-3-Ultra:emulator"
    # the stored turn counts as prompt: "one", "Echo: one" (2 tokens), "two"
    assert second["usage"]["input_tokens"] == 1 + 2 + 1
    assert v2(api, dict(follow, storage={"thread_id": first["thread_id"], "limit": 1}))["usage"]["input_tokens"] == 2 + 1
    listed = api.ok("/threads/messages", thread_id=first["thread_id"])["messages"]
    assert [(m["role"], m["content"]) for m in listed][:4] == [
        ("user", "one"), ("assistant", "Echo: one"), ("user", "two"), ("assistant", "Echo: two")]
    assert listed[1]["message_id"] == first["message_id"]
    missing = requests.post(api.base.replace("/api/v1", "/api/v2") + "/chat/completions", headers=api.auth,
                            json=dict(follow, storage={"thread_id": "nope"}), timeout=TIMEOUT)
    assert (missing.status_code, missing.json()["message"]) == (404, "No such thread")


def test_assistant_id_gives_model_and_instructions_on_both_contracts(api):
    assistant = api.ok("/assistants", {"model": "GigaChat-2-Max", "name": "n", "instructions": "Be brief"})["assistant_id"]
    one = api.ok("/chat/completions", {"assistant_id": assistant, "messages": [{"role": "user", "content": "hi"}]})
    assert one["model"] == "GigaChat-2-Max:emulator" and one["usage"]["prompt_tokens"] == 1 + 1
    stored = api.ok("/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                                          "storage": {"is_stateful": True, "assistant_id": assistant}})
    assert stored["thread_id"] and stored["message_id"] and stored["model"] == "GigaChat-2-Max:emulator"
    two = v2(api, {"assistant_id": assistant, "messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    assert two["model"] == "GigaChat-2-Max:emulator" and two["usage"]["input_tokens"] == 1 + 1
    assert api.refused("/chat/completions", {"assistant_id": "nope", "messages": [{"role": "user", "content": "x"}]}) == {
        "status": 404, "message": "No such assistant"}
    assert api.refused("/chat/completions", {"messages": [{"role": "user", "content": "x"}], "storage": {}})[
        "message"] == "storage.is_stateful must be a boolean"
