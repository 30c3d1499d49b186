"""Images, audio and documents in messages (issue 24, part 2), against the emulator.

Every form a message may carry a file in (a path, bytes, a data: URI, a pair,
a file object, OpenAI's image_url/input_audio/file parts, the short image/
audio/file parts, gpt4free's media=) on both contracts, through every entry
(``chat``, ``Session``, ``aio``, the provider, gpt4free's own clients): each
file is uploaded once (``POST /files``, ``purpose=general``, GigaChat's MIME
type) and referenced by id (v1 ``attachments``, v2 ``files`` parts).
GigaChat's limits are refused before any request, naming the item; a reused
id the server no longer has is uploaded again and the call resent once; the
emulator checks the same limits itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import pathlib
import re
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import requests

import gigachat_lite
from gigachat_lite import GigaChat, NotFoundError, Session, aio
from gigachat_lite.api import prepare_call
from gigachat_lite.coordination import fleet
from gigachat_lite.emulator import Emulator, Fault
from gigachat_lite.emulator.files import parse_multipart

MiB = 1024 * 1024
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x0f" + b"\xff\xfb\x90d" + b"\x00" * 64
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
QUESTION = "What is this?"


@pytest.fixture
def emu() -> Any:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def folder(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "photo.jpg").write_bytes(JPEG)
    (tmp_path / "song.mp3").write_bytes(MP3)
    (tmp_path / "report.pdf").write_bytes(PDF)
    (tmp_path / "notes.txt").write_text("Купить хлеб.", encoding="utf-8")
    (tmp_path / "slides.pptx").write_bytes(b"PK\x03\x04 slides")
    return tmp_path


def uploads(emu: Emulator) -> List[Tuple[str, str, bytes, str]]:
    """Every ``POST /files`` the emulator received: (filename, content type, bytes, purpose)."""
    found = []
    for request in emu.requests:
        if request.method == "POST" and request.path.endswith("/files"):
            parts = parse_multipart(request.headers.get("Content-Type"), request.body)
            assert parts is not None
            name, kind, data = parts["file"]
            found.append((name or "", kind, data, parts["purpose"][2].decode()))
    return found


def chats(emu: Emulator) -> List[Dict[str, Any]]:
    return [r.json for r in emu.requests if r.path.endswith("/chat/completions")]


def referenced(body: Dict[str, Any]) -> List[str]:
    """The file ids a chat body references, v1 or v2."""
    ids: List[str] = []
    for message in body["messages"]:
        ids += message.get("attachments") or []
        if isinstance(message.get("content"), list):
            ids += [f["id"] for part in message["content"] for f in part.get("files", [])]
    return ids


def stored_id(emu: Emulator, data: bytes) -> str:
    (entry,) = [f for f in emu.file_store.listing() if emu.file_store.get(f["id"])[1] == data]
    return str(entry["id"])


# -- every form, both contracts -----------------------------------------------------------------

Build = Callable[[pathlib.Path], Dict[str, Any]]


def _attached(*items: Any) -> Build:
    return lambda d: {"role": "user", "content": QUESTION, "attachments": [i(d) if callable(i) else i for i in items]}


def _parts(*parts: Any) -> Build:
    return lambda d: {"role": "user", "content": [p(d) if callable(p) else p for p in parts]}


TEXT = {"type": "text", "text": QUESTION}
# name, message, (uploaded file name or None for a name made from the hash, MIME type, bytes)
FORMS: List[Tuple[str, Build, Tuple[Optional[str], str, bytes]]] = [
    ("path str", _attached(lambda d: str(d / "cat.png")), ("cat.png", "image/png", PNG)),
    ("pathlib", _attached(lambda d: d / "cat.png"), ("cat.png", "image/png", PNG)),
    ("bytes", _attached(PNG), (None, "image/png", PNG)),
    ("bytearray jpeg", _attached(bytearray(JPEG)), (None, "image/jpeg", JPEG)),
    ("data uri", _attached(PNG_URI), (None, "image/png", PNG)),
    ("data uri untyped", _attached("data:;base64," + base64.b64encode(PDF).decode()), (None, "application/pdf", PDF)),
    ("pair", _attached((PNG, "кот.png")), ("кот.png", "image/png", PNG)),
    ("pair with path", _attached(lambda d: (d / "song.mp3", "voice.mp3")), ("voice.mp3", "audio/mp3", MP3)),
    ("file object", _attached(lambda d: open(d / "report.pdf", "rb")), ("report.pdf", "application/pdf", PDF)),
    ("BytesIO pair", _attached(lambda d: (io.BytesIO(WAV), "hello.wav")), ("hello.wav", "audio/x-wav", WAV)),
    ("wav bytes", _attached(WAV), (None, "audio/x-wav", WAV)),
    ("txt path", _attached(lambda d: d / "notes.txt"), ("notes.txt", "text/plain", "Купить хлеб.".encode())),
    ("pptx: GigaChat's type", _attached(lambda d: d / "slides.pptx"), ("slides.pptx", "application/pptx", b"PK\x03\x04 slides")),
    ("image_url part", _parts(TEXT, {"type": "image_url", "image_url": {"url": PNG_URI, "detail": "auto"}}),
     (None, "image/png", PNG)),
    ("image_url str", _parts(TEXT, {"type": "image_url", "image_url": PNG_URI}), (None, "image/png", PNG)),
    ("image part path", _parts(QUESTION, lambda d: {"image": d / "cat.png"}), ("cat.png", "image/png", PNG)),
    ("audio part bytes", _parts(QUESTION, {"audio": MP3}), (None, "audio/mp3", MP3)),
    ("input_audio part", _parts(TEXT, {"type": "input_audio", "input_audio": {"data": base64.b64encode(WAV).decode(),
                                                                                "format": "wav"}}),
     (None, "audio/x-wav", WAV)),
    ("file part (OpenAI)", _parts(TEXT, {"type": "file", "file": {"file_data": "data:application/pdf;base64,"
                                                                  + base64.b64encode(PDF).decode(), "filename": "report.pdf"}}),
     ("report.pdf", "application/pdf", PDF)),
    ("file part short", _parts(QUESTION, lambda d: {"file": str(d / "report.pdf")}), ("report.pdf", "application/pdf", PDF)),
]


@pytest.mark.slow
@pytest.mark.parametrize("api_version", ["v1", "v2"])
@pytest.mark.parametrize("name,build,expected", FORMS, ids=[f[0] for f in FORMS])
def test_every_form_is_uploaded_once_and_referenced(
    emu: Emulator, folder: pathlib.Path, name: str, build: Build, expected: Tuple[Optional[str], str, bytes], api_version: str
) -> None:
    session = Session(**emu.client_config())
    reply = session.chat([{"role": "system", "content": "Be brief."}, build(folder)], stream=False, api_version=api_version)
    assert reply.text == "Echo: " + QUESTION
    (upload,) = uploads(emu)
    filename, mime, data = expected
    assert upload[1:] == (mime, data, "general")
    if filename is not None:
        assert upload[0] == filename
    else:  # named by its content, with its type's extension
        digest, _, extension = upload[0].partition(".")
        assert digest == hashlib.sha256(data).hexdigest()[:16] and extension.isalnum()
    file_id = stored_id(emu, data)
    (body,) = chats(emu)
    user = body["messages"][1]
    if api_version == "v1":
        assert user == {"role": "user", "content": QUESTION, "attachments": [file_id]}
    else:
        assert {"text": QUESTION} in user["content"] and {"files": [{"id": file_id}]} in user["content"]
        assert "attachments" not in user


@pytest.mark.parametrize("api_version", ["v1", "v2"])
def test_ids_given_stay_and_files_add_to_them(emu: Emulator, folder: pathlib.Path, api_version: str) -> None:
    session = Session(**emu.client_config())
    own = session.upload_file(folder / "notes.txt")["id"]
    session.chat([{"role": "user", "content": QUESTION, "attachments": [own, folder / "report.pdf"]}],
                 stream=False, api_version=api_version)
    assert referenced(chats(emu)[-1]) == [own, stored_id(emu, PDF)]
    assert emu.file_store.uploads == 2


def test_v2_files_parts_on_v1_become_attachments(emu: Emulator, folder: pathlib.Path) -> None:
    session = Session(**emu.client_config())
    own = session.upload_file(folder / "notes.txt")["id"]
    session.chat([{"role": "user", "content": [{"text": QUESTION}, {"files": [{"id": own}]}]}], stream=False, api_version="v1")
    assert chats(emu)[-1]["messages"] == [{"role": "user", "content": QUESTION, "attachments": [own]}]


# -- every entry --------------------------------------------------------------------------------


def _collect_async(stream: Any) -> str:
    async def main() -> str:
        return "".join([chunk async for chunk in stream])
    return asyncio.run(main())


@pytest.mark.slow
@pytest.mark.parametrize("api_version", ["v1", "v2"])
@pytest.mark.parametrize("entry", ["chat stream", "chat whole", "Session stream", "aio stream", "aio whole", "aio parse"])
def test_every_entry_uploads(emu: Emulator, folder: pathlib.Path, monkeypatch: pytest.MonkeyPatch, entry: str,
                             api_version: str) -> None:
    for key, value in emu.env().items():
        monkeypatch.setenv(key, value)
    message = [{"role": "user", "content": [QUESTION, {"image": folder / "cat.png"}]}]
    if entry == "chat stream":
        text = "".join(gigachat_lite.chat(message, api_version=api_version))
    elif entry == "chat whole":
        text = gigachat_lite.chat(message, stream=False, api_version=api_version).text
    elif entry == "Session stream":
        with Session() as session:
            text = "".join(session.chat(message, api_version=api_version))
    elif entry == "aio stream":
        text = _collect_async(aio.chat(message, api_version=api_version))
    elif entry == "aio whole":
        text = _collect_async(aio.chat(message, stream=False, api_version=api_version))
    else:
        emu.set_reply('{"answer": "a cat"}')  # v1's answer; v2's emulator makes one from the schema
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
        parsed = asyncio.run(aio.parse(message, schema, api_version=api_version))
        assert isinstance(parsed, dict) and isinstance(parsed["answer"], str)
        text = "Echo: " + QUESTION
    assert emu.file_store.uploads == 1
    assert referenced(chats(emu)[-1]) == [stored_id(emu, PNG)]


def _opens_of(path: pathlib.Path) -> List[int]:
    """The threads that open ``path`` for reading from now on (Python's audit hook for ``open``: public, and forever)."""
    seen: List[int] = []
    _WATCHED[str(path)] = seen
    return seen


_WATCHED: Dict[str, List[int]] = {}


def _audit(event: str, args: Tuple[Any, ...]) -> None:
    if event == "open" and len(args) > 1 and str(args[0]) in _WATCHED and "r" in str(args[1]):
        _WATCHED[str(args[0])].append(threading.get_ident())


sys.addaudithook(_audit)


def test_aio_reads_and_uploads_off_the_event_loop(emu: Emulator, folder: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: Dict[str, List[int]] = {"read": _opens_of(folder / "cat.png"), "upload": []}
    original_call = Session.call

    def call(self: Session, method: str, path: str, **kwargs: Any) -> Any:
        if path == "/files":
            threads["upload"].append(threading.get_ident())
        return original_call(self, method, path, **kwargs)

    monkeypatch.setattr(Session, "call", call)
    session = Session(**emu.client_config())

    async def main() -> Tuple[int, str]:
        stream = aio.chat([{"role": "user", "content": QUESTION, "attachments": [folder / "cat.png"]}], session=session)
        assert not threads["read"]  # checked on the loop, nothing read yet
        return threading.get_ident(), "".join([chunk async for chunk in stream])

    loop_thread, text = asyncio.run(main())
    assert text == "Echo: " + QUESTION
    assert threads["read"] and threads["upload"] and loop_thread not in threads["read"] + threads["upload"]


def test_provider_media_and_image_parts(emu: Emulator, folder: pathlib.Path) -> None:
    key = {"api_key": emu.api_key, "base_url": emu.base_url, "auth_url": emu.auth_url}
    text = "".join(GigaChat.create_completion("GigaChat", [{"role": "user", "content": QUESTION}],
                                              media=[(PNG, "cat.png"), (str(folder / "report.pdf"), None)], **key))
    assert text == "Echo: " + QUESTION
    assert chats(emu)[-1]["messages"] == [
        {"role": "user", "content": QUESTION, "attachments": [stored_id(emu, PNG), stored_id(emu, PDF)]}]

    async def main() -> str:
        messages = [{"role": "user", "content": [TEXT, {"type": "image_url", "image_url": {"url": PNG_URI}}]}]
        async with GigaChat.create_async_generator("GigaChat", messages, **key) as stream:
            return "".join([chunk async for chunk in stream])

    assert asyncio.run(main()) == "Echo: " + QUESTION
    assert referenced(chats(emu)[-1]) == [stored_id(emu, PNG)]
    assert [u[0] for u in uploads(emu)] == ["cat.png", "report.pdf"]  # the picture again: not uploaded again


def test_provider_media_goes_to_the_last_user_message(emu: Emulator) -> None:
    key = {"api_key": emu.api_key, "base_url": emu.base_url, "auth_url": emu.auth_url}
    history = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
               {"role": "user", "content": QUESTION}, {"role": "assistant", "content": "thinking"}]
    "".join(GigaChat.create_completion("GigaChat", history, media=[(JPEG, None)], **key))
    sent = chats(emu)[-1]["messages"]
    assert [m.get("attachments") for m in sent] == [None, None, [stored_id(emu, JPEG)], None]


def test_gpt4free_clients_pass_images(emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    g4f = pytest.importorskip("g4f")
    g4f.debug.version_check = False  # it would ask PyPI for a newer gpt4free
    from g4f.client import AsyncClient, Client
    from g4f.providers.retry_provider import ProviderCircuitBreaker

    for key, value in emu.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(g4f.cookies.CookiesConfig, "cookies_dir", str(tmp_path))  # its usage log
    ProviderCircuitBreaker.reset()
    client = Client(provider=GigaChat, api_key=emu.api_key)
    ask = [{"role": "user", "content": QUESTION}]
    reply = client.chat.completions.create(model="GigaChat", messages=ask, image=PNG, image_name="cat.png")
    assert reply.choices[0].message.content == "Echo: " + QUESTION
    reply = client.chat.completions.create(model="GigaChat", messages=ask, media=[(MP3, "song.mp3")], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in reply) == "Echo: " + QUESTION
    assert referenced(chats(emu)[-1]) == [stored_id(emu, MP3)]

    async def main() -> str:
        parts = [{"role": "user", "content": [TEXT, {"type": "image_url", "image_url": {"url": PNG_URI}}]}]
        whole = await AsyncClient(provider=GigaChat, api_key=emu.api_key).chat.completions.create(model="GigaChat", messages=parts)
        return str(whole.choices[0].message.content)

    assert asyncio.run(main()) == "Echo: " + QUESTION
    assert referenced(chats(emu)[-1]) == [stored_id(emu, PNG)]
    assert [u[0] for u in uploads(emu)] == ["cat.png", "song.mp3"]


# -- uploaded once --------------------------------------------------------------------------------


def test_the_same_bytes_in_any_form_are_uploaded_once(emu: Emulator, folder: pathlib.Path) -> None:
    session = Session(**emu.client_config())
    for item in (folder / "cat.png", PNG, PNG_URI, (PNG, "other-name.png"), io.BytesIO(PNG)):
        if isinstance(item, io.BytesIO):
            item = (item, "from-memory.png")
        session.chat([{"role": "user", "content": QUESTION, "attachments": [item]}], stream=False)
    session.chat([{"role": "user", "content": "1", "attachments": [PNG]}, {"role": "assistant", "content": "ok"},
                  {"role": "user", "content": "2", "attachments": [PNG]}], stream=False, api_version="v2")
    assert emu.file_store.uploads == 1
    file_id = stored_id(emu, PNG)
    assert [referenced(body) for body in chats(emu)] == [[file_id]] * 5 + [[file_id, file_id]]


@pytest.mark.slow
def test_threads_of_one_process_upload_once(emu: Emulator, folder: pathlib.Path) -> None:
    emu.add_fault(Fault(path="*/api/v1/files", stall=0.3))  # a slow upload: every thread asks meanwhile
    session = Session(**emu.client_config())
    errors: List[BaseException] = []

    def ask() -> None:
        try:
            session.chat([{"role": "user", "content": QUESTION, "attachments": [folder / "report.pdf"]}], stream=False)
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=ask) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors and emu.file_store.uploads == 1
    assert {tuple(referenced(body)) for body in chats(emu)} == {(stored_id(emu, PDF),)}


def test_a_file_is_uploaded_per_client_id_and_per_key(folder: pathlib.Path) -> None:
    # GigaChat binds a file to the X-Client-ID it was uploaded with, and to its owner's key.
    with Emulator(keys=("key-one", "key-two")) as emu:
        config = {"base_url": emu.base_url, "auth_url": emu.auth_url}
        one, two = Session(api_key="key-one", **config), Session(api_key="key-two", **config)
        message = [{"role": "user", "content": QUESTION, "attachments": [folder / "cat.png"]}]
        one.chat(message, stream=False)
        one.chat(message, stream=False, client_id="user-7")
        one.chat(message, stream=False, client_id="user-7")
        Session(api_key="key-one", client_id="user-7", **config).chat(message, stream=False)
        two.chat(message, stream=False)
        assert emu.file_store.uploads == 3
        uploads_by_client = [r.headers.get("X-Client-ID") for r in emu.requests if r.path.endswith("/files")]
        assert uploads_by_client == [None, "user-7", None]


def test_reset_forgets_the_ids(emu: Emulator, folder: pathlib.Path) -> None:
    message = [{"role": "user", "content": QUESTION, "attachments": [folder / "cat.png"]}]
    Session(**emu.client_config()).chat(message, stream=False)
    gigachat_lite.reset()
    Session(**emu.client_config()).chat(message, stream=False)
    assert emu.file_store.uploads == 2


# -- a reused id the server no longer has ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("api_version", ["v1", "v2"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_deleted_file_is_uploaded_again_and_the_call_resent_once(emu: Emulator, folder: pathlib.Path, api_version: str,
                                                                  stream: bool) -> None:
    session = Session(**emu.client_config())
    message = [{"role": "user", "content": QUESTION, "attachments": [folder / "cat.png"]}]
    session.chat(message, stream=False, api_version=api_version)
    old = stored_id(emu, PNG)
    emu.file_store.delete(old)  # deleted on the server, behind the client's back
    before = len(emu.requests)
    reply = session.chat(message, stream=stream, api_version=api_version)
    assert "".join(reply) == "Echo: " + QUESTION
    assert [r.path.rsplit("/", 2)[-2:] for r in emu.requests[before:]] == [
        ["chat", "completions"], ["v1", "files"], ["chat", "completions"]]
    new = stored_id(emu, PNG)
    assert new != old and referenced(emu.requests[-1].json) == [new] and referenced(emu.requests[before].json) == [old]


def test_delete_file_forgets_the_id_at_once(emu: Emulator, folder: pathlib.Path) -> None:
    session = Session(**emu.client_config())
    message = [{"role": "user", "content": QUESTION, "attachments": [folder / "cat.png"]}]
    session.chat(message, stream=False)
    session.delete_file(stored_id(emu, PNG))
    before = len(emu.requests)
    session.chat(message, stream=False)
    assert [r.path.rsplit("/", 1)[-1] for r in emu.requests[before:]] == ["files", "completions"]  # no refused call first


def test_other_errors_and_fresh_ids_are_not_retried(emu: Emulator, folder: pathlib.Path) -> None:
    session = Session(max_retries=0, **emu.client_config())
    message = [{"role": "user", "content": QUESTION, "attachments": [folder / "cat.png"]}]
    with pytest.raises(NotFoundError, match="No such model"):
        session.chat(message, stream=False, model="NoSuchModel")  # the file was fresh, and the 404 is the model's
    with pytest.raises(NotFoundError, match="No such model"):
        session.chat(message, stream=False, model="NoSuchModel")  # reused now, but the 404 names no file
    emu.add_fault(Fault(path="chat/completions", status=404, message=f"No such file: {stored_id(emu, PNG)}", times=2))
    with pytest.raises(NotFoundError, match="No such file"):
        session.chat(message, stream=False)  # refused again after one new upload: the second refusal stands
    assert emu.file_store.uploads == 2 and len(chats(emu)) == 4


def test_a_stale_id_in_the_fleet_store_is_replaced(emu: Emulator, folder: pathlib.Path, tmp_path: pathlib.Path) -> None:
    url = "file://" + str(tmp_path / "coordination")
    message = [{"role": "user", "content": QUESTION, "attachments": [folder / "cat.png"]}]
    Session(coordination=url, **emu.client_config()).chat(message, stream=False)
    old = stored_id(emu, PNG)
    emu.file_store.delete(old)
    gigachat_lite.reset()  # as in another worker: only the store knows the id
    session = Session(coordination=url, **emu.client_config())
    assert session.chat(message, stream=False).text == "Echo: " + QUESTION
    new = stored_id(emu, PNG)
    gigachat_lite.reset()
    Session(coordination=url, **emu.client_config()).chat(message, stream=False)
    assert referenced(chats(emu)[-1]) == [new] and emu.file_store.uploads == 2
    assert fleet.coordination_for(url).files.uploads == 0  # the third worker uploaded nothing


# -- refused before any request ----------------------------------------------------------------------


def _sparse(folder: pathlib.Path, name: str, size: int) -> pathlib.Path:
    path = folder / name
    with open(path, "wb") as handle:
        handle.truncate(size)  # a sparse file: its size is checked, never read
    return path


def _closed_bytes() -> io.BytesIO:
    handle = io.BytesIO(PNG)
    handle.close()
    return handle


def _closed(path: pathlib.Path) -> Any:
    handle = open(path, "rb")
    handle.close()
    return handle


LimitCase = Tuple[str, Callable[[pathlib.Path], List[Dict[str, Any]]], type, str]
SECRET_URL = "https://user:s3cr3t@example.com/cat.png?token=s3cr3t"
LIMITS: List[LimitCase] = [
    ("image over 15 MB", lambda d: [{"role": "user", "content": "x", "attachments": [_sparse(d, "big.png", 15 * MiB + 1)]}],
     ValueError, r"messages\[0\]\.attachments\[0\]: .*big\.png is 15\.0 MB \(15,728,641 bytes\); GigaChat takes images up to 15 MB"),
    ("image of 17.2 MB", lambda d: [{"role": "system", "content": "s"},
                                    {"role": "user", "content": "x", "attachments": [b"\x89PNG\r\n\x1a\n" + bytes(int(17.2 * MiB))]}],
     ValueError, r"messages\[1\]\.attachments\[0\]: the image/png data is 17\.2 MB; GigaChat takes images up to 15 MB"),
    ("audio over 35 MB", lambda d: [{"role": "user", "content": ["x", {"audio": _sparse(d, "long.mp3", 35 * MiB + 1)}]}],
     ValueError, r"messages\[0\]\.content\[1\]: .*long\.mp3 is 35\.0 MB .*GigaChat takes audio files up to 35 MB"),
    ("document over 40 MB", lambda d: [{"role": "user", "content": "x", "attachments": [_sparse(d, "book.pdf", 40 * MiB + 5)]}],
     ValueError, r"messages\[0\]\.attachments\[0\]: .*book\.pdf is 40\.0 MB .*GigaChat takes documents up to 40 MB"),
    ("data uri over 15 MB", lambda d: [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG + bytes(16 * MiB)).decode()}}]}],
     ValueError, r"messages\[0\]\.content\[0\]: the image/png data: URI is 16\.0 MB"),
    ("two images in a message", lambda d: [{"role": "user", "content": ["x", {"image": PNG}], "attachments": [d / "cat.png"]}],
     ValueError, r"messages\[0\]: 2 images \(attachments\[0\], content\[1\]\); GigaChat takes one image per message"),
    ("eleven files", lambda d: [{"role": "user", "content": "x", "attachments": [f"file-{n}" for n in range(6)]},
                                {"role": "user", "content": "y", "attachments": [d / "report.pdf"] + [f"f-{n}" for n in range(4)]}],
     ValueError, r"messages: 11 files in one request; GigaChat takes at most 10"),
    ("80 MB of audio", lambda d: [{"role": "user", "content": "x", "attachments": [_sparse(d, f"a{n}.mp3", 30 * MiB)]}
                                  for n in range(3)],
     ValueError, r"messages: images and audio add up to 90\.0 MB; GigaChat takes up to 80 MB of them in one request"),
    ("remote url", lambda d: [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": SECRET_URL}}]}],
     ValueError, r"messages\[0\]\.content\[0\]: GigaChat cannot fetch a URL \(https://example\.com/\.\.\.\)"),
    ("url with a token in its query", lambda d: [{"role": "user", "content": "x", "attachments": [
        "https://example.com?token=s3cr3t", "https://example.com#access_token=s3cr3t"]}],
     ValueError, r"messages\[0\]\.attachments\[0\]: GigaChat cannot fetch a URL \(https://example\.com/\.\.\.\)"),
    ("url whose password holds a slash", lambda d: [{"role": "user", "content": "x", "attachments": [
        "https://user:s3cr3t/x@example.com/cat.png"]}],
     ValueError, r"GigaChat cannot fetch a URL \(https://\.\.\.\); download the file"),
    ("ftp url", lambda d: [{"role": "user", "content": "x", "attachments": ["ftp://user:s3cr3t@example.com/cat.png"]}],
     ValueError, r"GigaChat cannot fetch a URL \(ftp://example\.com/\.\.\.\)"),
    ("no such file", lambda d: [{"role": "user", "content": "x", "attachments": ["dog.png"]}],
     ValueError, r"messages\[0\]\.attachments\[0\]: no such file: dog\.png"),
    ("a folder", lambda d: [{"role": "user", "content": "x", "attachments": [d]}], ValueError, r"is not a file"),
    ("empty file", lambda d: [{"role": "user", "content": "x", "attachments": [_sparse(d, "empty.txt", 0)]}],
     ValueError, r"messages\[0\]\.attachments\[0\]: .*empty\.txt is empty"),
    ("gif", lambda d: [{"role": "user", "content": "x", "attachments": [b"GIF89a" + bytes(20)]}],
     ValueError, r"image/gif, which GigaChat does not take \(images: jpg, png, tiff, bmp;"),
    ("webp by name", lambda d: [{"role": "user", "content": "x", "attachments": [(PNG, "cat.webp")]}],
     ValueError, r"cat\.webp is image/webp, which GigaChat does not take"),
    ("unknown bytes", lambda d: [{"role": "user", "content": "x", "attachments": [bytes(range(256))]}],
     ValueError, r"cannot tell what the data is: give it a file name"),
    ("image part holding a pdf", lambda d: [{"role": "user", "content": [{"image": d / "report.pdf"}]}],
     ValueError, r"messages\[0\]\.content\[0\]: an image part holds .*report\.pdf \(application/pdf\), which is not an image"),
    ("image_url without url", lambda d: [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
     ValueError, r"messages\[0\]\.content\[0\]: an image_url part needs"),
    ("text-mode file", lambda d: [{"role": "user", "content": "x", "attachments": [open(d / "notes.txt", encoding="utf-8")]}],
     TypeError, r"notes\.txt is opened in text mode"),
    ("an int", lambda d: [{"role": "user", "content": "x", "attachments": [42]}],
     TypeError, r"messages\[0\]\.attachments\[0\]: an attachment is a file id, a path, bytes"),
    ("bad base64", lambda d: [{"role": "user", "content": "x", "attachments": ["data:image/png;base64,@@@@"]}],
     ValueError, r"the image/png data: URI is not valid base64"),
    ("non-ascii base64", lambda d: [{"role": "user", "content": "x", "attachments": [PNG_URI[:-2] + "Жж"]}],
     ValueError, r"messages\[0\]\.attachments\[0\]: the image/png data: URI is not valid base64"),
    ("bad input_audio base64 after a file", lambda d: [{"role": "user", "attachments": [d / "report.pdf"], "content": [
        "x", {"type": "input_audio", "input_audio": {"data": "@@@@", "format": "wav"}}]}],
     ValueError, r"messages\[0\]\.content\[1\]: the wav audio is not valid base64"),
    ("closed file object", lambda d: [{"role": "user", "content": "x", "attachments": [_closed(d / "cat.png")]}],
     ValueError, r"messages\[0\]\.attachments\[0\]: .*cat\.png is closed"),
    ("closed BytesIO", lambda d: [{"role": "user", "content": "x", "attachments": [(_closed_bytes(), "cat.png")]}],
     ValueError, r"messages\[0\]\.attachments\[0\]: cat\.png is closed"),
    ("nul byte in a path", lambda d: [{"role": "user", "content": "x", "attachments": ["ca\x00t.png", pathlib.Path("a\x00.png")]}],
     ValueError, r"messages\[0\]\.attachments\[0\]: 'ca\\x00t\.png' is not a usable path"),
    ("heic photo", lambda d: [{"role": "user", "content": "x", "attachments": [b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(8)]}],
     ValueError, r"image/heic, which GigaChat does not take"),
    ("avif by its bytes", lambda d: [{"role": "user", "content": "x", "attachments": [b"\0\0\0\x1cftypavif" + bytes(20)]}],
     ValueError, r"image/avif, which GigaChat does not take"),
    ("video part", lambda d: [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "v"}}]}],
     ValueError, r"messages\[0\]\.content\[0\]: unknown part type 'video_url'"),
]
ENTRIES = ("chat", "session v2", "aio", "provider")


def _attempt(entry: str, emu: Emulator, messages: List[Dict[str, Any]]) -> None:
    config = emu.client_config()
    if entry == "chat":
        gigachat_lite.chat(messages, **config)
    elif entry == "session v2":
        Session(**config).chat(messages, api_version="v2")
    elif entry == "aio":
        aio.chat(messages, **config)  # checked at the call, on the loop's side
    else:
        GigaChat.create_completion("GigaChat", messages, **config)


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name,build,exc,match", LIMITS, ids=[c[0] for c in LIMITS])
def test_limits_and_bad_files_are_refused_before_any_request(
    emu: Emulator, folder: pathlib.Path, entry: str, name: str, build: Callable[[pathlib.Path], Any], exc: type, match: str
) -> None:
    with pytest.raises(exc, match=match) as caught:
        _attempt(entry, emu, build(folder))
    assert emu.requests == []
    assert "s3cr3t" not in str(caught.value)


def test_provider_media_is_checked_too(emu: Emulator) -> None:
    config = emu.client_config()
    ask = [{"role": "user", "content": QUESTION}]
    with pytest.raises(TypeError, match="media must be a list"):
        GigaChat.create_completion("GigaChat", ask, media="cat.png", **config)
    with pytest.raises(ValueError, match=r"media\[1\]: no such file: gone\.png"):
        GigaChat.create_completion("GigaChat", ask, media=[(PNG, "a.png"), ("gone.png", None)], **config)
    with pytest.raises(ValueError, match=r"messages\[0\]: 2 images \(attachments\[0\], attachments\[1\]\)"):
        GigaChat.create_completion("GigaChat", ask, media=[(PNG, "a.png"), (JPEG, "b.jpg")], **config)
    with pytest.raises(ValueError, match="no user message"):
        GigaChat.create_completion("GigaChat", [{"role": "system", "content": "s"}], media=[(PNG, "a.png")], **config)
    assert emu.requests == []


def test_a_file_that_grew_past_its_limit_after_the_check_is_refused_before_any_request(emu: Emulator, folder: pathlib.Path) -> None:
    picture = folder / "growing.png"
    picture.write_bytes(PNG)
    call = prepare_call([{"role": "user", "content": QUESTION, "attachments": [picture]}], stream=False, **emu.client_config())
    with open(picture, "ab") as handle:
        handle.truncate(16 * MiB)
    with pytest.raises(ValueError, match=r"messages\[0\]\.attachments\[0\]: .*growing\.png is 16\.0 MB; GigaChat takes images"):
        call.send()  # its size is checked again before it is read
    assert emu.requests == []


def test_base64_broken_past_its_start_is_refused_before_the_upload(emu: Emulator) -> None:
    uri = PNG_URI + "*not base64*"
    with pytest.raises(ValueError, match=r"messages\[0\]\.attachments\[0\]: the image/png data: URI is not valid base64"):
        Session(**emu.client_config()).chat([{"role": "user", "content": "x", "attachments": [uri]}])
    assert emu.requests == []


def test_text_that_begins_like_a_bitmap_is_sent_as_text(emu: Emulator) -> None:
    notes = [b"BMI report: 22.5 for Bob", b"BM-3 rocket launch notes"]  # "BM" is a bitmap's first letters too
    Session(**emu.client_config()).chat([{"role": "user", "content": "Summarise", "attachments": notes}], stream=False)
    assert [(kind, data) for _, kind, data, _ in uploads(emu)] == [("text/plain", note) for note in notes]


def test_a_real_bitmap_is_still_known_by_its_bytes(emu: Emulator) -> None:
    header = b"BM" + (70).to_bytes(4, "little") + bytes(4) + (54).to_bytes(4, "little") + (40).to_bytes(4, "little")
    bitmap = header + (1).to_bytes(4, "little") * 2 + bytes(44)
    Session(**emu.client_config()).chat([{"role": "user", "content": "x", "attachments": [bitmap]}], stream=False)
    assert [kind for _, kind, _, _ in uploads(emu)] == ["image/bmp"]


@pytest.mark.parametrize("form", ["open file", "named BytesIO pair"])
def test_a_file_object_in_the_history_is_read_again_and_its_id_reused(emu: Emulator, folder: pathlib.Path, form: str) -> None:
    handle = open(folder / "cat.png", "rb") if form == "open file" else io.BytesIO(PNG)
    item = handle if form == "open file" else (handle, "cat.png")
    with handle:
        session = Session(**emu.client_config())
        history: List[Dict[str, Any]] = [{"role": "user", "content": QUESTION, "attachments": [item]}]
        first = session.chat(history, stream=False)
        assert handle.tell() == 0  # put back where it was
        history += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "And now?"}]
        session.chat(history, stream=False)
    assert emu.file_store.uploads == 1
    ids = [referenced(body) for body in chats(emu)]
    assert len(ids) == 2 and ids[0] == ids[1] and len(ids[0]) == 1


def test_a_file_object_read_to_its_end_is_named(emu: Emulator) -> None:
    handle = io.BytesIO(PNG)
    handle.read()
    with pytest.raises(ValueError, match=r"messages\[0\]\.attachments\[0\]: cat\.png has been read to its end: seek it back"):
        Session(**emu.client_config()).chat([{"role": "user", "content": "x", "attachments": [(handle, "cat.png")]}])
    assert emu.requests == []


def test_a_file_object_closed_after_the_check_is_a_named_error(emu: Emulator) -> None:
    handle = io.BytesIO(PNG)
    call = prepare_call([{"role": "user", "content": QUESTION, "attachments": [(handle, "cat.png")]}], stream=False,
                        **emu.client_config())
    handle.close()
    with pytest.raises(ValueError, match=r"messages\[0\]\.attachments\[0\]: cannot read cat\.png: I/O operation on closed file"):
        call.send()
    assert emu.requests == []


def test_a_large_document_goes_through(emu: Emulator, folder: pathlib.Path) -> None:
    # Above the emulator's 16 MB for other requests: /files takes GigaChat's 40 MB documents.
    book = folder / "book.txt"
    book.write_bytes(b"lorem ipsum " * (20 * MiB // 12))
    Session(**emu.client_config()).chat([{"role": "user", "content": "Summarise", "attachments": [book]}], stream=False)
    assert emu.file_store.uploads == 1 and uploads(emu)[0][:2] == ("book.txt", "text/plain")


# -- the emulator's own checks ----------------------------------------------------------------------


def _bearer(emu: Emulator) -> Dict[str, str]:
    token = requests.post(emu.auth_url, data={"scope": "GIGACHAT_API_PERS"}, timeout=10, headers={
        "Authorization": "Basic " + emu.api_key, "RqUID": "6f0b1291-c7f3-43c6-bb2e-9f3efb2dc98e"}).json()["access_token"]
    return {"Authorization": "Bearer " + token}


def _stored(emu: Emulator, kind: str, data: bytes = bytes(10), owner: Optional[str] = None) -> str:
    return str(emu.file_store.add("f", "general", data, kind, owner=owner)["id"])


def _post(emu: Emulator, v2: bool, ids_per_message: List[List[str]], headers: Optional[Dict[str, str]] = None) -> requests.Response:
    if v2:
        messages = [{"role": "user", "content": [{"text": "x"}] + [{"files": [{"id": i}]} for i in ids]} for ids in ids_per_message]
        url = emu.base_url.replace("/v1", "/v2") + "/chat/completions"
    else:
        messages = [{"role": "user", "content": "x", "attachments": ids} for ids in ids_per_message]
        url = emu.base_url + "/chat/completions"
    return requests.post(url, json={"model": "GigaChat", "messages": messages}, headers={**_bearer(emu), **(headers or {})},
                         timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_the_emulator_checks_what_a_chat_references(emu: Emulator, v2: bool) -> None:
    def refused(ids: List[List[str]], headers: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
        reply = _post(emu, v2, ids, headers)
        return reply.status_code, reply.json()["message"]

    png, jpeg, wav, pdf = (_stored(emu, "image/png"), _stored(emu, "image/jpeg"), _stored(emu, "audio/x-wav"),
                           _stored(emu, "application/pdf"))
    assert _post(emu, v2, [[png, wav, pdf], [jpeg]]).status_code == 200
    assert refused([["nope"]]) == (404, "No such file: nope")
    assert refused([[png, jpeg]]) == (422, "messages[0]: 2 images; one image per message")
    assert refused([[pdf] * 6, [pdf] * 5]) == (422, "11 files in one request; at most 10")
    big = _stored(emu, "image/png", bytes(15 * MiB + 1))
    assert refused([[big]]) == (413, f"messages[0]: file {big} (image/png) is {15 * MiB + 1} bytes; image files take up to {15 * MiB} bytes")
    blob = bytes(27 * MiB)  # one object stored three times: 81 MB of audio in 27 MB of memory
    audio = [_stored(emu, "audio/mp3", blob) for _ in range(3)]
    assert refused([audio]) == (413, f"images and audio of {81 * MiB} bytes in one request; at most {80 * MiB}")
    mine = _stored(emu, "image/png", owner="user-1")
    assert refused([[mine]]) == (403, f"Access to file '{mine}' is denied")
    assert refused([[mine]], {"X-Client-ID": "user-2"}) == (403, f"Access to file '{mine}' is denied")
    assert _post(emu, v2, [[mine]], {"X-Client-ID": "user-1"}).status_code == 200


def test_the_emulator_refuses_malformed_attachments(emu: Emulator) -> None:
    reply = requests.post(emu.base_url + "/chat/completions", headers=_bearer(emu), timeout=10, json={
        "model": "GigaChat", "messages": [{"role": "user", "content": "x", "attachments": [1]}]})
    assert (reply.status_code, reply.json()["message"]) == (422, "messages[0].attachments must be a list of file ids")


def test_the_emulator_counts_uploads_only(emu: Emulator) -> None:
    auth = _bearer(emu)
    for name in ("a.txt", "b.txt"):
        assert requests.post(emu.base_url + "/files", files={"file": (name, b"x", "text/plain")}, data={"purpose": "general"},
                             headers=auth, timeout=10).status_code == 200
    drawn = requests.post(emu.base_url.replace("/v1", "/v2") + "/chat/completions", headers=auth, timeout=10, json={
        "model": "GigaChat-3-Ultra", "messages": [{"role": "user", "content": [{"text": "a cat"}]}],
        "tools": [{"image_generate": {}}]})
    assert drawn.status_code == 200 and len(emu.file_store.listing()) == 3
    assert emu.file_store.uploads == 2


def test_a_known_file_is_not_read_again_until_it_changes(emu: Emulator, folder: pathlib.Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A conversation attaches its files with every turn: unchanged, they are neither read nor hashed again.
    notes = folder / "notes.txt"
    reads = _opens_of(notes)
    session = Session(**emu.client_config())
    history = [{"role": "user", "content": "Summarise", "attachments": [notes]}]
    for turn in range(3):
        reply = session.chat(history, stream=False)
        history += [{"role": "assistant", "content": reply.text}, {"role": "user", "content": f"And {turn}?"}]
    assert len(reads) == 1 and emu.file_store.uploads == 1
    notes.write_text("Купить хлеб и сыр.", encoding="utf-8")  # changed: a new file for GigaChat
    session.chat(history, stream=False)
    assert len(reads) == 2 and emu.file_store.uploads == 2
    assert emu.file_store.get(referenced(chats(emu)[-1])[0])[1] == "Купить хлеб и сыр.".encode()


def test_an_empty_attachments_list_adds_no_files_part_on_v2(emu: Emulator) -> None:
    Session(**emu.client_config()).chat([{"role": "user", "content": QUESTION, "attachments": []}], api_version="v2",
                                        stream=False)
    (body,) = chats(emu)
    assert body["messages"][0]["content"] == [{"text": QUESTION}]
