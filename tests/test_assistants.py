"""The assistants API (issue 22): ``session.assistants``, ``gigachat_lite.assistants`` and
``aio.assistants`` against the emulator; the recorded replies (``fixtures/assistants``,
real traffic with its ``file_ids`` quirk) read into :class:`Assistant`; bad input refused
before any request."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any, Dict, Iterator, List

import pytest
import responses

import gigachat_lite
from gigachat_lite import Assistant, NotFoundError, Session, aio
from gigachat_lite.emulator import Emulator

from conftest import BASE, fixture_json

pytestmark = pytest.mark.gigachat_emulator()  # a fresh one per test: assistants are kept between calls
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
def session(emu: Emulator) -> Iterator[Session]:
    with Session(**emu.client_config()) as s:
        yield s


def api_requests(emu: Emulator) -> List[Any]:
    return [r for r in emu.requests if "/oauth" not in r.path]


def test_create_list_get_update_delete(session: Session, emu: Emulator) -> None:
    uploaded = session.upload_file(io.BytesIO("Будь добр.".encode("utf-8")), "assistant", filename="guide.txt")
    created = session.assistants.create("GigaChat-Pro", "helper", instructions="Be brief", description="d",
                                        file_ids=[uploaded["id"]], functions=[WEATHER], metadata={"team": 7})
    assert isinstance(created, Assistant) and created.assistant_id
    # The reply names only the id and the time; the rest is what was sent.
    assert set(created.raw) == {"assistant_id", "created_at"} and created.created_at == created.raw["created_at"]
    assert (created.model, created.name, created.instructions, created.description) == ("GigaChat-Pro", "helper", "Be brief", "d")
    assert created.file_ids == [uploaded["id"]] and created.metadata == {"team": 7} and created.functions == [WEATHER]

    listed = session.assistants.list()
    assert [a.assistant_id for a in listed] == [created.assistant_id]
    one = session.assistants.get(created.assistant_id)
    assert one.raw == listed[0].raw
    assert one.files == [{"file_id": uploaded["id"], "name": "guide.txt"}] and one.file_ids == [uploaded["id"]]
    assert (one.model, one.name, one.instructions, one.metadata, one.threads_count) == ("GigaChat-Pro", "helper", "Be brief", {"team": 7}, 0)
    assert [f["name"] for f in one.functions or []] == ["get_weather"]

    updated = session.assistants.update(created.assistant_id, name="helper-2")
    assert (updated.name, updated.instructions, updated.metadata) == ("helper-2", "Be brief", {"team": 7})
    assert api_requests(emu)[-1].json == {"assistant_id": created.assistant_id, "name": "helper-2", "description": None,
                                          "instructions": None, "file_ids": None, "metadata": None}

    assert session.assistants.delete_file(created.assistant_id, uploaded["id"]) is True
    assert session.assistants.get(created.assistant_id).files == []
    assert session.assistants.delete(created.assistant_id) is True
    with pytest.raises(NotFoundError) as caught:
        session.assistants.get(created.assistant_id)
    assert caught.value.status_code == 404
    assert session.assistants.list() == []


def test_unknown_model_and_file_are_the_servers_404(session: Session) -> None:
    with pytest.raises(NotFoundError, match="No such model"):
        session.assistants.create("NoSuchModel", "x")
    with pytest.raises(NotFoundError, match="No such file"):
        session.assistants.create("GigaChat-Pro", "x", file_ids=["nope"])
    created = session.assistants.create("GigaChat-Pro", "x")
    with pytest.raises(NotFoundError):
        session.assistants.delete_file(created.assistant_id, "nope")


def test_module_namespace_uses_the_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    created = gigachat_lite.assistants.create("GigaChat-Pro", "from-env")
    assert gigachat_lite.assistants.get(created.assistant_id).name == "from-env"
    assert gigachat_lite.assistants.delete(created.assistant_id)


def test_aio(session: Session, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)

    async def main() -> Dict[str, Any]:
        mine = aio.AsyncAssistants(session)
        created = await mine.create("GigaChat-Pro", "async", instructions="Be brief")
        listed, one = await asyncio.gather(aio.assistants.list(), mine.get(created.assistant_id))
        updated = await mine.update(created.assistant_id, description="new")
        with pytest.raises(TypeError, match="name must be a str"):
            await mine.create("GigaChat-Pro", 5)  # type: ignore[arg-type]
        deleted = await aio.assistants.delete(created.assistant_id)
        return {"created": created, "listed": listed, "one": one, "updated": updated, "deleted": deleted}

    got = asyncio.run(main())
    assert [a.assistant_id for a in got["listed"]] == [got["created"].assistant_id]  # the same emulator, via the environment
    assert got["one"].name == "async" and got["updated"].description == "new" and got["deleted"] is True
    assert aio.AsyncAssistants.create.__name__ == "create" and "off the loop" in (aio.AsyncAssistants.create.__doc__ or "")


@pytest.mark.slow
@pytest.mark.parametrize("call,error,match", [
    (lambda a: a.create("", "n"), ValueError, "model must be a non-empty str"),
    (lambda a: a.create("GigaChat", None), TypeError, "name must be a str"),
    (lambda a: a.create("GigaChat", "n", file_ids="f1"), TypeError, "file_ids must be a list of str ids"),
    (lambda a: a.create("GigaChat", "n", file_ids=["f1", 2]), TypeError, r"file_ids\[1\] must be a str"),
    (lambda a: a.create("GigaChat", "n", instructions=3), TypeError, "instructions must be a str"),
    (lambda a: a.create("GigaChat", "n", metadata=[1]), TypeError, "metadata must be a dict"),
    (lambda a: a.create("GigaChat", "n", metadata={"x": object()}), TypeError, "metadata cannot be sent as JSON"),
    (lambda a: a.create("GigaChat", "n", functions=[{"description": "no name"}]), ValueError, "functions"),
    (lambda a: a.update(" ", name="n"), ValueError, "assistant_id must be a non-empty str"),
    (lambda a: a.update("a1", name=""), ValueError, "name must be a non-empty str"),
    (lambda a: a.get(None), TypeError, "assistant_id must be a str"),
    (lambda a: a.delete(7), TypeError, "assistant_id must be a str"),
    (lambda a: a.delete_file("a1", ""), ValueError, "file_id must be a non-empty str"),
])
def test_bad_input_is_refused_before_any_request(session: Session, emu: Emulator, call: Any, error: type, match: str) -> None:
    before = len(emu.requests)
    with pytest.raises(error, match=match):
        call(session.assistants)
    assert len(emu.requests) == before


# -- the recorded replies --------------------------------------------------------------------


TOKEN = "test-access-token"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def recorded(rsps: responses.RequestsMock, method: str, path: str, name: str) -> None:
    rsps.add(method, BASE + path, json=fixture_json(name))


def test_recorded_list_reads_file_ids(rsps: responses.RequestsMock) -> None:
    recorded(rsps, "GET", "/assistants", "assistants/get_assistants.json")
    listed = Session(access_token=TOKEN, base_url=BASE).assistants.list()
    first = listed[0]
    assert [a.assistant_id for a in listed] == ["111", "222"]
    # The quirk: "file_ids" (ids) where the SDK expects "files" (objects); both views are filled.
    assert first.file_ids == ["222"] and first.files == [{"file_id": "222", "name": None}]
    assert (first.model, first.name, first.instructions, first.metadata) == ("GigaChat-Pro", "lonely", "Assistant", {"test": 234})
    assert (first.created_at, first.updated_at, first.description, first.functions) == (1715684019, 1715684019, None, None)
    assert first.raw == fixture_json("assistants/get_assistants.json")["data"][0]


def test_recorded_create_modify_delete(rsps: responses.RequestsMock) -> None:
    recorded(rsps, "POST", "/assistants", "assistants/post_assistants.json")
    recorded(rsps, "POST", "/assistants/modify", "assistants/post_assistant_modify.json")
    recorded(rsps, "POST", "/assistants/delete", "assistants/post_assistant_delete.json")
    recorded(rsps, "POST", "/assistants/files/delete", "assistants/post_assistant_files_delete.json")
    assistants = Session(access_token=TOKEN, base_url=BASE).assistants
    created = assistants.create("GigaChat-Pro", "lonely", instructions="Assistant", metadata={"test": 234})
    assert (created.assistant_id, created.created_at, created.updated_at) == ("111", 1715684019, 1715684019)
    assert json.loads(rsps.calls[0].request.body) == {  # type: ignore[arg-type]
        "model": "GigaChat-Pro", "name": "lonely", "description": None, "instructions": "Assistant",
        "file_ids": None, "metadata": {"test": 234}}
    modified = assistants.update("111", name="lonely_assistant")
    assert (modified.name, modified.file_ids, modified.updated_at) == ("lonely_assistant", ["222"], 1715684158)
    assert assistants.delete("5a18157d-7f0b-4bf9-b4e9-f01271808104") is True
    assert assistants.delete_file("111", "222") is True


def test_a_reply_that_is_not_an_assistant_is_refused(rsps: responses.RequestsMock) -> None:
    rsps.add("GET", BASE + "/assistants", json={"data": [{"name": "no id"}]})
    rsps.add("POST", BASE + "/assistants/delete", json={"assistant_id": "1"})
    assistants = Session(access_token=TOKEN, base_url=BASE).assistants
    with pytest.raises(gigachat_lite.InvalidResponseError, match="no assistant_id"):
        assistants.list()
    with pytest.raises(gigachat_lite.InvalidResponseError, match="no 'deleted' flag"):
        assistants.delete("1")
