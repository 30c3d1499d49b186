"""What each GigaChat endpoint answers, independent of sockets.

``route()`` turns a parsed request into a :class:`Reply`; the transport in
``server.py`` writes it and applies faults. The emulator state it needs is the small
:class:`State` protocol implemented by ``Emulator``.
"""

import json
from http import HTTPStatus
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple
from urllib.parse import parse_qs, unquote

from . import extras, replies
from .replies import JSON_TYPE, OAUTH_JSON_TYPE, ReplySource

OAUTH_PATH = "/api/v2/oauth"
# "/api/v1" is the documented base; "/v1" mirrors the newer https://api.giga.chat/v1.
API_PREFIXES = ("/api/v1", "/v1")
SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
ROLES = ("system", "user", "assistant", "function")
# The real endpoint answers with a versioned name, e.g. "GigaChat:2.0.28.2".
MODEL_VERSION = "emulator"


@dataclass
class Reply:
    """A response to write: plain (``body``) or a stream (``events`` without ``[DONE]``)."""

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: Tuple[Tuple[str, str], ...] = ()
    events: Optional[List[bytes]] = None


class State(Protocol):
    """The emulator state the endpoints read (implemented by ``Emulator``)."""

    keys: Tuple[str, ...]
    piece_size: int
    reply: ReplySource

    def issue_token(self) -> Tuple[str, int]: ...  # noqa: E704

    def token_valid(self, token: str) -> bool: ...  # noqa: E704

    def model_list(self) -> List[Tuple[str, str]]: ...  # noqa: E704


def api_error(status: int, message: str) -> Reply:
    """An API error reply."""
    return Reply(status, replies.api_error(status, message))


def oauth_error(status: int, code: int, message: str) -> Reply:
    """An OAuth error reply; codes 6 and 7 are the real ones, 5 is ours."""
    return Reply(status, replies.oauth_error(code, message), OAUTH_JSON_TYPE)


BAD_CREDENTIALS = (401, 6, "credentials doesn't match db data")
EXPIRED = (401, "Token has expired")


def fault_reply(path: str, status: int, message: Optional[str]) -> Reply:
    """An injected error shaped for the endpoint (OAuth ``code`` or API ``status``)."""
    if status == 401 and message is None:
        if path == OAUTH_PATH:
            return oauth_error(*BAD_CREDENTIALS)
        return api_error(*EXPIRED)
    text = message or phrase(status)
    if path == OAUTH_PATH:
        return oauth_error(status, status, text)
    return api_error(status, text)


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status, or ``"Error"`` for unassigned codes."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def route(state: State, method: str, path: str, headers: Any, body: bytes) -> Reply:
    """Answer one request. ``path`` has no query string; ``headers`` is case-insensitive."""
    if path == OAUTH_PATH:
        return _need(method, "POST") or oauth(state, headers, body)
    sub = next((path[len(p):] for p in API_PREFIXES if path.startswith(p + "/")), None)
    if sub is None:
        return api_error(404, "Not Found")
    if sub == "/models" or sub.startswith("/models/"):
        allowed = "GET"
    elif sub in ("/chat/completions", "/embeddings", "/tokens/count"):
        allowed = "POST"
    elif extras.handles(sub):
        allowed = extras.allowed_method(method, sub)
    else:
        return api_error(404, "Not Found")
    refused = _need(method, allowed) or _bearer(state, headers)
    if refused:
        return refused
    if extras.handles(sub):
        routed: Reply = extras.route(state, method, sub, headers, body)
        return routed
    if sub == "/models":
        return Reply(200, replies.models_body(state.model_list()))
    if sub.startswith("/models/"):
        return get_model(state, unquote(sub[len("/models/"):]))
    data = _json_body(body)
    if isinstance(data, Reply):
        return data
    if sub == "/chat/completions":
        return chat(state, data)
    return texts_endpoint(state, sub, data)


def _need(method: str, allowed: str) -> Optional[Reply]:
    if method == allowed:
        return None
    reply = api_error(405, "Method Not Allowed")
    reply.headers = (("Allow", allowed),)
    return reply


def _bearer(state: State, headers: Any) -> Optional[Reply]:
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and state.token_valid(token.strip()):
        return None
    return api_error(*EXPIRED)


def oauth(state: State, headers: Any, body: bytes) -> Reply:
    """``POST /api/v2/oauth``: Basic key, RqUID, form ``scope`` -> token."""
    scheme, _, key = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic" or key.strip() not in state.keys:
        return oauth_error(*BAD_CREDENTIALS)
    try:
        uuid.UUID(headers.get("RqUID") or "")
    except ValueError:
        return oauth_error(400, 5, "RqUID header is missing or not a UUID")
    form = parse_qs(body.decode("utf-8", "replace"))
    if form.get("scope", [""])[0] not in SCOPES:
        return oauth_error(400, 7, "scope from db not fully includes consumed scope")
    token, expires_at = state.issue_token()
    # Key order as recorded: access_token, expires_at (milliseconds since the epoch).
    body = replies.dumps({"access_token": token, "expires_at": expires_at})
    return Reply(200, body, OAUTH_JSON_TYPE)


def get_model(state: State, model_id: str) -> Reply:
    """``GET /models/{id}``."""
    for known, kind in state.model_list():
        if known == model_id:
            return Reply(200, replies.dumps(replies.model_entry(known, kind)))
    return api_error(404, "No such model")


def _json_body(body: bytes) -> Any:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return api_error(400, "Invalid JSON")
    if not isinstance(data, dict):
        return api_error(422, "request body must be a JSON object")
    return data


def check_messages(messages: Any) -> Optional[str]:
    """Why ``messages`` is invalid, or ``None`` when it is fine."""
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            return "messages[%d] must be an object" % number
        if message.get("role") not in ROLES:
            return "messages[%d].role must be one of %s" % (number, ", ".join(ROLES))
        content = message.get("content")
        # An assistant turn that called a function may carry no text.
        if content is None and message["role"] == "assistant" and "function_call" in message:
            continue
        if not isinstance(content, str):
            return "messages[%d].content must be a string" % number
    return None


def _chat_model(state: State, data: Dict[str, Any]) -> Any:
    model = data.get("model", "GigaChat")
    if not isinstance(model, str):
        return api_error(422, "model must be a string")
    if (model, "chat") not in state.model_list():
        return api_error(404, "No such model")
    return model


def chat(state: State, data: Dict[str, Any]) -> Reply:
    """``POST /chat/completions``, plain or ``"stream": true``."""
    model = _chat_model(state, data)
    if isinstance(model, Reply):
        return model
    problem = check_messages(data.get("messages"))
    stream = data.get("stream", False)
    max_tokens = data.get("max_tokens")
    if problem is None and not isinstance(stream, bool):
        problem = "stream must be a boolean"
    if problem is None and max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        problem = "max_tokens must be a positive integer"
    if problem:
        return api_error(422, problem)
    try:
        full = replies.reply_text(state.reply if state.reply is not None else extras.default_reply, data)
    except Exception:  # a broken reply callable is the server's fault, as a 500
        return api_error(500, "Internal Server Error")
    text, finish = replies.truncate(full, max_tokens, state.piece_size)
    usage = replies.usage(data, text, state.piece_size)
    created = int(time.time())
    name = "%s:%s" % (model, MODEL_VERSION)
    function = extras.pick_function(data)
    if isinstance(function, str):
        return api_error(422, function)
    if function is not None:
        body, events = extras.function_call_reply(data, function, name, created, state.piece_size, stream)
        if events is not None:
            return Reply(200, content_type=replies.SSE_TYPE, events=events)
        return Reply(200, body or b"")
    if stream:
        events = replies.stream_events(text, finish, name, created, usage, state.piece_size)
        return Reply(200, content_type=replies.SSE_TYPE, events=events)
    return Reply(200, replies.completion_body(text, finish, name, created, usage))


def texts_endpoint(state: State, sub: str, data: Dict[str, Any]) -> Reply:
    """``POST /embeddings`` and ``POST /tokens/count``: ``input`` is a list of strings."""
    texts: Sequence[Any] = data.get("input")  # type: ignore[assignment]
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return api_error(422, "input must be a list of strings")
    if sub == "/tokens/count":
        return Reply(200, replies.tokens_count_body(texts, state.piece_size))
    model = data.get("model", "Embeddings")
    if (model, "embedder") not in state.model_list():
        return api_error(404, "No such model")
    return Reply(200, replies.embeddings_body(texts, model, state.piece_size))
