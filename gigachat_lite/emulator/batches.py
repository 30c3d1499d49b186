"""``/batches``: GigaChat's batch jobs, answered line by line as time passes.

``POST /batches?method=chat_completions|embedder`` takes the JSONL file as the
raw body (``application/octet-stream``, no upload to ``/files``), one
``{"id", "request"}`` object a line, and answers with the batch object,
status ``created``. ``GET /batches`` lists every batch and ``GET
/batches?batch_id=ID`` the one, both as a bare JSON array (the one shape the
official SDKs all parse). When a batch completes, its results are a JSONL file
in the file store (``output_file_id``, served by ``GET /files/{id}/content``),
one ``{"id", "result"}`` or ``{"id", "error": {"status", "message"}}`` line per
request (the error shape is not documented: it follows the API's error bodies).
Shapes as in ``reference/API_FACTS.md`` section 1.

A batch is worked on when it is looked at, not in a thread of its own: after
:attr:`BatchStore.start_delay` seconds it is ``in_progress`` and one line is
answered every :attr:`BatchStore.line_time` seconds, by the same code as the
endpoint the line stands for (a ``status`` fault injected on that endpoint
makes the line an error, as a real sub-request might fail); once every line is
answered it is ``completed``. Both settings are 0 by default: the first look
finds the batch completed.
"""

import json
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Protocol, Set, Tuple
from urllib.parse import parse_qs

from .catalog import texts
from .chat_v1 import chat
from .faults import Fault
from .chat_context import ChatState
from .wire import Reply, error_reply, json_reply, phrase

__all__ = ["BatchStore", "route", "METHODS", "MAX_LINES"]

#: ``method=`` values and the endpoint each line of such a batch stands for.
METHODS = {"chat_completions": "/chat/completions", "embedder": "/embeddings"}
#: Lines a batch may have: "up to 500 lines per file" (the official SDK's batching notebook).
MAX_LINES = 500
JSONL_TYPE = "application/jsonl"


class BatchState(ChatState, Protocol):
    """What answering a batch's lines needs from the emulator."""

    def take_fault(self, path: str, streaming: bool) -> Optional[Fault]: ...  # noqa: E704


class _Batch:
    __slots__ = ("id", "method", "lines", "created", "started", "answers", "output_file_id", "updated_at")

    def __init__(self, method: str, lines: List[Tuple[str, Dict[str, Any]]]) -> None:
        self.id = "batch_" + uuid.uuid4().hex[:24]
        self.method = method
        self.lines = lines
        self.created = int(time.time())
        self.started = time.monotonic()
        self.answers: List[Tuple[str, Dict[str, Any]]] = []  # (id, {"result": ...} or {"error": ...})
        self.output_file_id: Optional[str] = None
        self.updated_at = self.created

    def status(self, start_delay: float) -> str:
        if self.output_file_id is not None:
            return "completed"
        return "created" if time.monotonic() - self.started < start_delay else "in_progress"

    def view(self, start_delay: float) -> Dict[str, Any]:
        status = self.status(start_delay)
        counts: Dict[str, int] = {"total": len(self.lines)}
        if status != "created":
            counts["completed"] = sum(1 for _, answer in self.answers if "result" in answer)
            counts["failed"] = sum(1 for _, answer in self.answers if "error" in answer)
        body: Dict[str, Any] = {"id": self.id, "method": self.method, "request_counts": counts, "status": status}
        if self.output_file_id is not None:
            body["output_file_id"] = self.output_file_id
        body["created_at"] = self.created
        body["updated_at"] = self.updated_at
        return body


class BatchStore:
    """The batches, in memory, oldest first.

    Settable: ``start_delay`` (seconds a batch stays ``created``),
    ``line_time`` (seconds per answered line), ``max_lines`` and, to test
    clients, ``drop_ids`` (ids left out of every output file).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: Dict[str, _Batch] = {}
        self.start_delay = 0.0
        self.line_time = 0.0
        self.max_lines = MAX_LINES
        self.drop_ids: Set[str] = set()

    def create(self, method: str, lines: List[Tuple[str, Dict[str, Any]]]) -> Dict[str, Any]:
        batch = _Batch(method, lines)
        with self._lock:
            self._batches[batch.id] = batch
            return batch.view(self.start_delay)

    def look(self, state: BatchState, batch_id: Optional[str]) -> Optional[List[Dict[str, Any]]]:
        """The batch objects (one, or all), each brought up to date first; ``None``: no such batch."""
        with self._lock:
            if batch_id is not None and batch_id not in self._batches:
                return None
            chosen = [self._batches[batch_id]] if batch_id is not None else list(self._batches.values())
            for batch in chosen:
                self._advance(state, batch)
            return [batch.view(self.start_delay) for batch in chosen]

    def _advance(self, state: BatchState, batch: _Batch) -> None:
        if batch.output_file_id is not None or batch.status(self.start_delay) == "created":
            return
        elapsed = time.monotonic() - batch.started - self.start_delay
        due = len(batch.lines) if self.line_time <= 0 else min(len(batch.lines), int(elapsed / self.line_time))
        for task_id, request in batch.lines[len(batch.answers):due]:
            batch.answers.append((task_id, _answer(state, batch.method, request)))
            batch.updated_at = int(time.time())
        if len(batch.answers) == len(batch.lines):
            content = b"".join(
                json.dumps({"id": task_id, **answer}, ensure_ascii=False).encode("utf-8") + b"\n"
                for task_id, answer in batch.answers if task_id not in self.drop_ids
            )
            batch.output_file_id = state.file_store.add(f"{batch.id}_output.jsonl", "general", content, JSONL_TYPE)["id"]


def _answer(state: BatchState, method: str, request: Dict[str, Any]) -> Dict[str, Any]:
    endpoint = METHODS[method]
    fault = state.take_fault("/api/v1" + endpoint, streaming=False)
    if fault is not None and fault.status is not None:
        return {"error": {"status": fault.status, "message": fault.message or phrase(fault.status)}}
    body = dict(request)
    body.pop("stream", None)  # a batch line is answered whole: there is nobody to stream to
    answer: Callable[[], Reply] = (
        (lambda: chat(state, body)) if method == "chat_completions"
        else (lambda: texts(state.model_list(), endpoint, body, state.piece_size))
    )
    reply = answer()
    payload = json.loads(reply.body.decode("utf-8"))
    if reply.status == 200:
        return {"result": payload}
    return {"error": {"status": reply.status, "message": payload.get("message", phrase(reply.status))}}


def _parse(body: bytes, max_lines: int) -> Tuple[Optional[List[Tuple[str, Dict[str, Any]]]], Optional[Reply]]:
    """The ``(id, request)`` lines of a JSONL body, or the 400 naming the first bad line."""
    lines: List[Tuple[str, Dict[str, Any]]] = []
    seen: Set[str] = set()
    for number, raw in enumerate(body.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw.decode("utf-8"))
        except ValueError:
            return None, error_reply(400, "line %d: invalid JSON" % number)
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            return None, error_reply(400, "line %d: an object with a string id is required" % number)
        if item["id"] in seen:
            return None, error_reply(400, "line %d: duplicate id %s" % (number, item["id"]))
        if not isinstance(item.get("request"), dict):
            return None, error_reply(400, "line %d: request must be an object" % number)
        seen.add(item["id"])
        lines.append((item["id"], item["request"]))
    if not lines:
        return None, error_reply(400, "the batch file is empty")
    if len(lines) > max_lines:
        return None, error_reply(413, "a batch takes at most %d lines, got %d" % (max_lines, len(lines)))
    return lines, None


def route(store: BatchStore, state: BatchState, method: str, query: str, body: bytes) -> Reply:
    """Answer ``/batches`` once the HTTP method and the bearer token are checked."""
    params = {name: values[0] for name, values in parse_qs(query).items()}
    if method == "POST":
        kind = params.get("method")
        if kind not in METHODS:
            return error_reply(422, "method must be one of %s" % ", ".join(METHODS))
        lines, refused = _parse(body, store.max_lines)
        if refused is not None or lines is None:
            return refused or error_reply(400, "Bad Request")
        return json_reply(store.create(kind, lines))
    found = store.look(state, params.get("batch_id"))
    if found is None:
        return error_reply(404, "No such batch")
    return json_reply(found)
