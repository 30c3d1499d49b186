"""``/files``: uploads kept in memory, listing, metadata, content and deletion.

The file objects follow the official SDK's models (no recorded traffic exists for them).
Generated files (the v2 ``image_generate`` stand-in) go into the same store, so their
bytes are served by ``GET /files/{id}/content`` like any upload.
"""

import threading
import time
import uuid
from email.message import Message
from typing import Any, Dict, List, Optional, Tuple

from .wire import Reply, dumps, error_reply, json_reply

FILE_PURPOSES = ("general", "assistant")


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


def allowed_method(method: str, sub: str) -> str:
    """The method ``sub`` (``/files...``) takes: ``/files`` takes GET and POST."""
    if sub == "/files":
        return method if method in ("GET", "POST") else "GET, POST"
    return "POST" if sub.endswith("/delete") else "GET"


def route(store: FileStore, method: str, sub: str, headers: Any, body: bytes) -> Reply:
    """Answer ``/files...`` once the method and the bearer token are checked."""
    if sub == "/files":
        if method == "GET":
            return json_reply({"data": store.listing()})
        return _upload(store, headers, body)
    file_id, _, action = sub[len("/files/"):].partition("/")
    found = store.get(file_id)
    if found is None or action not in ("", "delete", "content"):
        return error_reply(404, "No such file" if action in ("", "delete", "content") else "Not Found")
    if action == "delete":
        store.delete(file_id)
        return json_reply({"id": file_id, "deleted": True})
    if action == "content":
        return Reply(200, found[1], found[2])
    return Reply(200, dumps(found[0]))


def _upload(store: FileStore, headers: Any, body: bytes) -> Reply:
    parts = parse_multipart(headers.get("Content-Type") or "", body)
    if parts is None:
        return error_reply(400, "the request must be multipart/form-data")
    if "file" not in parts or not parts["file"][0]:
        return error_reply(400, "a 'file' part with a filename is required")
    purpose = parts["purpose"][2].decode("utf-8", "replace") if "purpose" in parts else "general"
    if purpose not in FILE_PURPOSES:
        return error_reply(422, "purpose must be one of %s" % ", ".join(FILE_PURPOSES))
    filename, kind, content = parts["file"]
    return json_reply(store.add(filename or "", purpose, content, kind))
