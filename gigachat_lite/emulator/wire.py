"""Wire basics shared by every route: JSON/SSE serialization, error bodies, the Reply value.

Formats copied from the recordings in ``tests/data/cassettes``: API JSON bodies are
compact UTF-8 with non-ASCII characters unescaped (the recorded ``Content-Length``
equals the compact length); API *error* bodies end with a newline (the recorded 404 is
41 bytes for a 40-byte object), key order ``status``, ``message``.
"""

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, List, Optional, Tuple

JSON_TYPE = "application/json; charset=utf-8"
# The OAuth host answers with a bare media type (see any cassette's first interaction).
OAUTH_JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"


@dataclass
class Reply:
    """A response to write: plain (``body``) or a stream (``events``, each one whole event).

    ``named`` marks a v2 stream (``event: NAME`` lines): the transport then shapes the
    events it injects for faults the same way.
    """

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: Tuple[Tuple[str, str], ...] = ()
    events: Optional[List[bytes]] = None
    named: bool = False


def dumps(obj: Any) -> bytes:
    """Serialize like the real API: compact separators, raw UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def api_error(status: int, message: str) -> bytes:
    """API error body ``{"status":N,"message":"..."}`` with the real trailing newline."""
    return dumps({"status": status, "message": message}) + b"\n"


def oauth_error(code: int, message: str) -> bytes:
    """OAuth error body ``{"code":N,"message":"..."}``."""
    return dumps({"code": code, "message": message})


def sse_event(obj: Any, event: Optional[str] = None) -> bytes:
    """One SSE event carrying ``obj`` as compact JSON, named when ``event`` is given."""
    head = b"event: " + event.encode("ascii") + b"\n" if event else b""
    return head + b"data: " + dumps(obj) + b"\n\n"


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status, or ``"Error"`` for unassigned codes."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_reply(status: int, message: str) -> Reply:
    """An API error reply."""
    return Reply(status, api_error(status, message))


def oauth_error_reply(status: int, code: int, message: str) -> Reply:
    """An OAuth error reply; codes 6 and 7 are the real ones, 5 is ours."""
    return Reply(status, oauth_error(code, message), OAUTH_JSON_TYPE)


def json_reply(obj: Any) -> Reply:
    """A 200 reply carrying ``obj`` as compact JSON."""
    return Reply(200, dumps(obj))


def parse_json(body: bytes) -> Any:
    """The request body as a JSON object, or the error :class:`Reply` the real API gives."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return error_reply(400, "Invalid JSON")
    if not isinstance(data, dict):
        return error_reply(422, "request body must be a JSON object")
    return data
