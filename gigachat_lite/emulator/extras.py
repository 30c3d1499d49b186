"""Function calling, ``/balance`` and ``/files`` for the emulator.

Function-call rule (deterministic, so tests can predict it): when a chat request
carries ``functions``, ``function_call`` is not ``"none"`` and the last message
is the user's, the reply calls a function instead of answering:

* ``function_call={"name": X}`` calls ``X`` (422 when ``X`` is not in ``functions``);
* ``"auto"`` (or no ``function_call``) calls the first function whose name occurs
  in the last user message, else the first function.

Its ``arguments`` fill the ``required`` parameters (all of them when none are
required): the first ``enum`` value, else by type: string -> the user's text,
integer/number -> 0, boolean -> false, array -> [], object -> {}. The reply
carries a fresh ``functions_state_id``. After a ``function`` message the
default reply is ``"Function <name> returned: <content>"``.

Shapes follow ``tests/data/fixtures/chat_completion_function.json``; the files
objects follow the official SDK's models (no recorded traffic exists for them).
"""

import json
import threading
import time
import uuid
from email.message import Message
from typing import Any, Dict, List, Optional, Tuple

from . import replies

FUNCTION_FINISH = "function_call"
FILE_PURPOSES = ("general", "assistant")
#: The balance served by default, as in ``tests/data/fixtures/balance.json``.
DEFAULT_BALANCE: Tuple[Tuple[str, int], ...] = (
    ("embeddings", 9999967),
    ("GigaChat-Pro", 991490),
    ("GigaChat-Max", 50000),
    ("GigaChat", 900000),
)
_EMPTY_BY_TYPE: Dict[str, Any] = {"integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}


# -- function calling -------------------------------------------------------------------


def _last_user_text(data: Dict[str, Any]) -> Optional[str]:
    messages = data.get("messages") or []
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    return last.get("content") or ""


def pick_function(data: Dict[str, Any]) -> Any:
    """The function description to call, ``None`` for a text reply, or an error text."""
    functions = data.get("functions")
    if not functions:
        return None
    if not isinstance(functions, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in functions):
        return "functions must be a list of objects with a name"
    choice = data.get("function_call", "auto")
    text = _last_user_text(data)
    if choice == "none" or text is None:
        return None
    if isinstance(choice, dict) and isinstance(choice.get("name"), str):
        named = [f for f in functions if f["name"] == choice["name"]]
        return named[0] if named else "function_call.name %r is not in functions" % choice["name"]
    if choice != "auto":
        return "function_call must be 'auto', 'none' or an object with a name"
    mentioned = [f for f in functions if f["name"] in text]
    return (mentioned or functions)[0]


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def arguments_for(function: Dict[str, Any], text: str) -> Dict[str, Any]:
    """Deterministic arguments for ``function`` from the user's ``text`` (see the module doc)."""
    parameters = _dict(function.get("parameters"))
    properties = _dict(parameters.get("properties"))
    required = parameters.get("required")
    names = required if isinstance(required, list) and required else list(properties)
    arguments: Dict[str, Any] = {}
    for name in names:
        schema = _dict(properties.get(name))
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            arguments[name] = schema["enum"][0]
        else:
            arguments[name] = _EMPTY_BY_TYPE.get(str(schema.get("type")), text)
    return arguments


def function_call_reply(
    data: Dict[str, Any], function: Dict[str, Any], model: str, created: int, piece_size: int, stream: bool
) -> Tuple[Optional[bytes], Optional[List[bytes]]]:
    """The body (``stream=False``) or the events (without ``[DONE]``) of a function call."""
    call = {"name": function["name"], "arguments": arguments_for(function, _last_user_text(data) or "")}
    state_id = str(uuid.uuid4())
    usage = replies.usage(data, json.dumps(call["arguments"], ensure_ascii=False), piece_size)
    message = {"content": "", "role": "assistant", "function_call": call, "functions_state_id": state_id}
    if not stream:
        body = {
            "choices": [{"message": message, "index": 0, "finish_reason": FUNCTION_FINISH}],
            "created": created,
            "model": model,
            "object": "chat.completion",
            "usage": usage,
        }
        return replies.dumps(body), None
    head = {"choices": [{"delta": message, "index": 0}], "created": created, "model": model, "object": "chat.completion"}
    tail = {
        "choices": [{"delta": {"content": ""}, "index": 0, "finish_reason": FUNCTION_FINISH}],
        "created": created,
        "model": model,
        "object": "chat.completion",
        "usage": usage,
    }
    return None, [replies.sse_event(head), replies.sse_event(tail)]


def default_reply(data: Dict[str, Any]) -> str:
    """The echo reply, or ``"Function <name> returned: <content>"`` after a function message."""
    messages = data.get("messages") or []
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "function":
        return "Function %s returned: %s" % (last.get("name") or "?", last.get("content") or "")
    return replies.default_reply(data)


# -- balance ------------------------------------------------------------------------------


def balance_body(balance: Dict[str, int]) -> bytes:
    """``GET /balance`` reply, as in ``tests/data/fixtures/balance.json``."""
    return replies.dumps({"balance": [{"usage": usage, "value": value} for usage, value in balance.items()]})


# -- files --------------------------------------------------------------------------------


class FileStore:
    """Uploaded files, in memory: id -> (file object dict, content, content type)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: Dict[str, Tuple[Dict[str, Any], bytes, str]] = {}

    def add(self, filename: str, purpose: str, content: bytes, content_type: str) -> Dict[str, Any]:
        """Store a file; return its object (field order of the official SDK's ``UploadedFile``)."""
        entry: Dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "access_policy": "private",
        }
        with self._lock:
            self._files[entry["id"]] = (entry, content, content_type)
        return entry

    def get(self, file_id: str) -> Optional[Tuple[Dict[str, Any], bytes, str]]:
        """The stored triple, or ``None``."""
        with self._lock:
            return self._files.get(file_id)

    def listing(self) -> List[Dict[str, Any]]:
        """Every file object, oldest first."""
        with self._lock:
            return [entry for entry, _, _ in self._files.values()]

    def delete(self, file_id: str) -> bool:
        """Forget a file; whether it existed."""
        with self._lock:
            return self._files.pop(file_id, None) is not None


def _header_params(value: str, header: str) -> Message:
    message = Message()
    message[header] = value
    return message


def parse_multipart(content_type: str, body: bytes) -> Optional[Dict[str, Tuple[Optional[str], str, bytes]]]:
    """Form parts by name: ``(filename, content type, bytes)``; ``None`` if not multipart.

    Hand-split rather than parsed with ``email``: it must give back the exact bytes.
    """
    boundary: Any = _header_params(content_type, "content-type").get_param("boundary", header="content-type")
    if not content_type.lower().startswith("multipart/form-data") or not isinstance(boundary, str):
        return None
    parts: Dict[str, Tuple[Optional[str], str, bytes]] = {}
    for chunk in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk[2:].partition(b"\r\n\r\n")  # chunk[2:] drops the CRLF after the boundary
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = _header_params(headers.get("content-disposition", ""), "content-disposition")
        name = disposition.get_param("name", header="content-disposition")
        if isinstance(name, str):
            filename = disposition.get_param("filename", header="content-disposition")
            kind = headers.get("content-type", "application/octet-stream")
            parts[name] = (filename if isinstance(filename, str) else None, kind, data[:-2] if data.endswith(b"\r\n") else data)
    return parts


# -- routing (called by endpoints.route once the method and the bearer token are checked) --


def handles(sub: str) -> bool:
    """Whether ``sub`` (the path after ``/api/v1``) is served here."""
    return sub == "/balance" or sub == "/files" or sub.startswith("/files/")


def allowed_method(method: str, sub: str) -> str:
    """The method ``sub`` takes (``/files`` takes GET and POST)."""
    if sub == "/files":
        return method if method in ("GET", "POST") else "GET, POST"
    return "POST" if sub.endswith("/delete") else "GET"


def route(state: Any, method: str, sub: str, headers: Any, body: bytes) -> Any:
    """Answer ``/balance`` and ``/files...``; ``state`` is the ``Emulator``."""
    from .endpoints import Reply, api_error  # endpoints imports this module: import at call time

    if sub == "/balance":
        if state.postpaid:
            return api_error(403, "Permission denied")
        return Reply(200, balance_body(state.balance))
    store: FileStore = state.file_store
    if sub == "/files":
        if method == "GET":
            return Reply(200, replies.dumps({"data": store.listing()}))
        return _upload(store, headers, body)
    file_id, _, action = sub[len("/files/"):].partition("/")
    found = store.get(file_id)
    if found is None or action not in ("", "delete", "content"):
        return api_error(404, "No such file" if action in ("", "delete", "content") else "Not Found")
    if action == "delete":
        store.delete(file_id)
        return Reply(200, replies.dumps({"id": file_id, "deleted": True}))
    if action == "content":
        return Reply(200, found[1], found[2])
    return Reply(200, replies.dumps(found[0]))


def _upload(store: FileStore, headers: Any, body: bytes) -> Any:
    from .endpoints import Reply, api_error

    parts = parse_multipart(headers.get("Content-Type") or "", body)
    if parts is None:
        return api_error(400, "the request must be multipart/form-data")
    if "file" not in parts or not parts["file"][0]:
        return api_error(400, "a 'file' part with a filename is required")
    purpose = parts["purpose"][2].decode("utf-8", "replace") if "purpose" in parts else "general"
    if purpose not in FILE_PURPOSES:
        return api_error(422, "purpose must be one of %s" % ", ".join(FILE_PURPOSES))
    filename, kind, content = parts["file"]
    return Reply(200, replies.dumps(store.add(filename or "", purpose, content, kind)))
