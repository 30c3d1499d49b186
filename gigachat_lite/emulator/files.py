"""``/files``: uploads kept in memory, listing, metadata, content and deletion; the limits on files a chat references.

The file objects follow the official SDK's models (no recorded traffic exists for them).
Generated files (the v2 ``image_generate`` stand-in) go into the same store, so their
bytes are served by ``GET /files/{id}/content`` like any upload. :attr:`FileStore.uploads`
counts ``POST /files`` calls.

A chat request that references files (v1 ``attachments``, v2 ``files`` parts) is
checked as GigaChat documents it (developers.sber.ru ``post-file`` and ``post-chat``):
an unknown id is 404 ``No such file: <id>``; a file uploaded with another
``X-Client-ID`` is 403 ``Access to file '<id>' is denied``; more than one image in a
message or more than :data:`MAX_FILES` files in the request is 422; a file over its
kind's size (:data:`SIZE_LIMITS`, the kind read from the type it was uploaded with:
``image/*``, ``audio/*``, else a document) or images and audio over
:data:`MAX_MEDIA_BYTES` in all is 413. Each message names the item.
"""

import threading
import time
import uuid
from email.message import Message
from typing import Any, Dict, List, Optional, Tuple

from .wire import Reply, dumps, error_reply, json_reply

FILE_PURPOSES = ("general", "assistant")
MiB = 1024 * 1024
#: Bytes one file of each kind may have when a chat references it.
SIZE_LIMITS = {"image": 15 * MiB, "audio": 35 * MiB, "document": 40 * MiB}
#: Files one chat request may reference.
MAX_FILES = 10
#: Bytes of images and audio one chat request may reference in all.
MAX_MEDIA_BYTES = 80 * MiB


def kind_of(content_type: str) -> str:
    """``"image"``, ``"audio"`` or ``"document"``: the limit a file of ``content_type`` falls under."""
    major = content_type.split("/")[0].strip().lower()
    return major if major in ("image", "audio") else "document"


class FileStore:
    """Uploaded files, in memory: id -> (file object dict, content, content type), and the X-Client-ID each is bound to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: Dict[str, Tuple[Dict[str, Any], bytes, str]] = {}
        self._owners: Dict[str, str] = {}
        self.uploads = 0  # POST /files calls that stored a file

    def add(self, filename: str, purpose: str, content: bytes, content_type: str, *, uploaded: bool = False,
            owner: Optional[str] = None) -> Dict[str, Any]:
        """Store a file; return its object (field order of the official SDK's ``UploadedFile``).

        ``uploaded``: counted in :attr:`uploads`; ``owner``: the ``X-Client-ID`` it was uploaded with.
        """
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
            if owner:
                self._owners[entry["id"]] = owner
            if uploaded:
                self.uploads += 1
        return entry

    def owner(self, file_id: str) -> Optional[str]:
        """The ``X-Client-ID`` ``file_id`` was uploaded with, if any."""
        with self._lock:
            return self._owners.get(file_id)

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
            self._owners.pop(file_id, None)
            return self._files.pop(file_id, None) is not None


def _referenced(message: Dict[str, Any], v2: bool) -> Any:
    """The file ids a message references, or why they are malformed (a str)."""
    if not v2:
        ids = message.get("attachments")
        if ids is None:
            return []
        if not isinstance(ids, list) or not all(isinstance(f, str) for f in ids):
            return "attachments must be a list of file ids"
        return ids
    # v2: the request's checks made sure every files part is a list of objects with a string id.
    return [f["id"] for part in message.get("content") or [] if isinstance(part, dict)
            for f in part.get("files") or []]


def files_problem(store: FileStore, messages: Any, v2: bool, client_id: Optional[str]) -> Optional[Reply]:
    """The error GigaChat answers to a chat referencing unknown, foreign or too many or too large files; ``None`` if fine.

    ``messages`` are already checked in shape (roles, content) by the contract's checks.
    """
    total = 0
    media = 0
    for number, message in enumerate(messages):
        where = "messages[%d]" % number
        ids = _referenced(message, v2)
        if isinstance(ids, str):
            return error_reply(422, "%s.%s" % (where, ids))
        images = 0
        for file_id in ids:
            found = store.get(file_id)
            if found is None:
                return error_reply(404, "No such file: %s" % file_id)
            owner = store.owner(file_id)
            if owner is not None and owner != client_id:
                return error_reply(403, "Access to file '%s' is denied" % file_id)
            entry, content, content_type = found
            kind = kind_of(content_type)
            if len(content) > SIZE_LIMITS[kind]:
                return error_reply(413, "%s: file %s (%s) is %d bytes; %s files take up to %d bytes"
                                   % (where, file_id, content_type, len(content), kind, SIZE_LIMITS[kind]))
            images += kind == "image"
            media += len(content) if kind != "document" else 0
        if images > 1:
            return error_reply(422, "%s: %d images; one image per message" % (where, images))
        total += len(ids)
    if total > MAX_FILES:
        return error_reply(422, "%d files in one request; at most %d" % (total, MAX_FILES))
    if media > MAX_MEDIA_BYTES:
        return error_reply(413, "images and audio of %d bytes in one request; at most %d" % (media, MAX_MEDIA_BYTES))
    return None


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
    return json_reply(store.add(filename or "", purpose, content, kind, uploaded=True, owner=headers.get("X-Client-ID")))
