"""Which code answers which request: OAuth, the bearer check and dispatch to the topic modules.

``route()`` turns a parsed request into a :class:`~.wire.Reply`; the transport in
``handler.py`` writes it and applies faults. The emulator state it needs is the small
:class:`State` protocol implemented by ``Emulator``.
"""

import uuid
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple
from urllib.parse import parse_qs, unquote

import gigachat_lite.emulator.assistants as assistants  # the modules: each names its route and checks
import gigachat_lite.emulator.threads as threads
import gigachat_lite.emulator.users as users
from .ai_check import ai_check
from .batches import BatchStore
from .batches import route as batches_route
from .catalog import balance, get_model, models, texts
from .chat_context import ChatState
from .chat_v1 import chat
from .chat_v2 import chat as chat_v2
from .faults import Fault
from .files import allowed_method
from .files import route as files_route
from .openapi import convert
from .state import Ledger, basic_key, bearer_token
from .wire import OAUTH_JSON_TYPE, Reply, dumps, error_reply, oauth_error_reply, parse_json, phrase

OAUTH_PATH = "/api/v2/oauth"
# "/api/v1" is the documented base; "/v1" mirrors the newer https://api.giga.chat/v1.
# The SDK derives the v2 chat URL by turning the base's last "/vN" into "/v2".
API_PREFIXES = ("/api/v1", "/v1", "/api/v2", "/v2")
SCOPES = users.SCOPES
BAD_CREDENTIALS = (401, 6, "credentials doesn't match db data")
EXPIRED = (401, "Token has expired")


class State(ChatState, Protocol):
    """The emulator state the routes read (implemented by ``Emulator``)."""

    keys: Tuple[str, ...]
    postpaid: bool
    balance: Dict[str, int]
    batches: BatchStore
    ledger: Ledger
    users: users.Users

    def token_for(self, key: str) -> Tuple[str, int]: ...  # noqa: E704

    def issue_token(self, key: Optional[str] = None) -> Tuple[str, int]: ...  # noqa: E704
    def take_fault(self, path: str, streaming: bool) -> Optional[Fault]: ...  # noqa: E704



JsonRoute = Callable[[State, str, Dict[str, Any]], Reply]
# POST endpoints taking a JSON object, by the path after the API prefix ("/v2" marks
# the v2 contract, which only has chat).
_JSON_POSTS: Dict[str, JsonRoute] = {
    "/embeddings": lambda state, sub, data: texts(state.model_list(), sub, data, state.piece_size),
    "/tokens/count": lambda state, sub, data: texts(state.model_list(), sub, data, state.piece_size),
    "/ai/check": lambda state, sub, data: ai_check(data, state.piece_size),
}
# POST endpoints reading the raw body: the SDK sends the OpenAPI text as is.
_RAW_POSTS: Dict[str, Callable[[bytes], Reply]] = {"/functions/convert": convert}
# Chat reads the headers too: X-Session-ID keys the prompt cache.
_CHATS: Dict[str, Callable[[State, Dict[str, Any], Any], Reply]] = {
    "/chat/completions": chat,
    "/v2/chat/completions": chat_v2,
}
# Paths answered by a topic module: its allowed methods, its answer.
_TopicRoute = Callable[[State, str, str, Dict[str, List[str]], bytes], Reply]
_TOPICS: Tuple[Tuple[Callable[[str], Optional[str]], _TopicRoute], ...] = (
    (assistants.allowed, assistants.route),
    (threads.allowed, threads.route),
)


def fault_reply(path: str, status: int, message: Optional[str]) -> Reply:
    """An injected error shaped for the endpoint (OAuth ``code`` or API ``status``)."""
    if status == 401 and message is None:
        if path == OAUTH_PATH:
            return oauth_error_reply(*BAD_CREDENTIALS)
        return error_reply(*EXPIRED)
    text = message or phrase(status)
    if path == OAUTH_PATH:
        return oauth_error_reply(status, status, text)
    return error_reply(status, text)


def limit_reply(retry_after: int) -> Reply:
    """The 429 of a key over its in-flight limit, with ``Retry-After``."""
    reply = error_reply(429, "Too Many Requests")
    reply.headers = (("Retry-After", str(retry_after)),)
    return reply


def _allowed(method: str, sub: str) -> Optional[str]:
    """The method ``sub`` takes, or ``None`` when nothing is served there."""
    if sub == "/models" or sub.startswith("/models/") or sub == "/balance":
        return "GET"
    if sub in _JSON_POSTS or sub in _RAW_POSTS or sub in _CHATS or sub == "/token":
        return "POST"
    for belongs, _ in _TOPICS:
        methods = belongs(sub)
        if methods is not None:
            return methods
    if sub == "/files" or sub.startswith("/files/"):
        return allowed_method(method, sub)
    if sub == "/batches":
        return "GET, POST"
    return None


def route(state: State, method: str, path: str, headers: Any, body: bytes, query: str = "") -> Reply:
    """Answer one request. ``path`` has no query string (that is ``query``); ``headers`` is case-insensitive."""
    if path == OAUTH_PATH:
        return _need(method, "POST") or oauth(state, headers, body)
    prefix = next((p for p in API_PREFIXES if path.startswith(p + "/")), None)
    sub = None if prefix is None else path[len(prefix):]
    if sub is not None and prefix is not None and prefix.endswith("/v2"):
        sub = "/v2" + sub if sub == "/chat/completions" else None
    allowed = None if sub is None else _allowed(method, sub)
    if sub is None or allowed is None:
        return error_reply(404, "Not Found")
    if sub == "/token":  # user and password auth: Basic, not a bearer token
        return _need(method, allowed) or users.token(state, headers, body)
    refused = _need(method, allowed) or _bearer(state, headers)
    if refused:
        return refused
    if sub == "/models":
        return models(state.model_list())
    if sub.startswith("/models/"):
        return get_model(state.model_list(), unquote(sub[len("/models/"):]))
    if sub == "/balance":
        return balance(state.balance, state.postpaid)
    if sub.startswith("/files"):
        return files_route(state.file_store, method, sub, headers, body)
    if sub == "/batches":
        return batches_route(state.batches, state, method, query, body)
    if sub in _RAW_POSTS:
        return _RAW_POSTS[sub](body)
    for belongs, answer in _TOPICS:
        if belongs(sub) is not None:
            return answer(state, method, sub, parse_qs(query), body)
    data = parse_json(body)
    if isinstance(data, Reply):
        return data
    if sub in _CHATS:
        return _CHATS[sub](state, data, headers)
    return _JSON_POSTS[sub](state, sub, data)


def _need(method: str, allowed: str) -> Optional[Reply]:
    if method == allowed or method in allowed.split(", "):
        return None
    reply = error_reply(405, "Method Not Allowed")
    reply.headers = (("Allow", allowed),)
    return reply


def _bearer(state: State, headers: Any) -> Optional[Reply]:
    token = bearer_token(headers)
    if token is not None and state.ledger.key_of(token) is not None:
        return None
    return error_reply(*EXPIRED)


def oauth(state: State, headers: Any, body: bytes) -> Reply:
    """``POST /api/v2/oauth``: Basic key, RqUID, form ``scope`` -> token."""
    key = basic_key(headers)
    if key is None or key not in state.keys:
        return oauth_error_reply(*BAD_CREDENTIALS)
    try:
        uuid.UUID(headers.get("RqUID") or "")
    except ValueError:
        return oauth_error_reply(400, 5, "RqUID header is missing or not a UUID")
    form = parse_qs(body.decode("utf-8", "replace"))
    if form.get("scope", [""])[0] not in SCOPES:
        return oauth_error_reply(400, 7, "scope from db not fully includes consumed scope")
    token, expires_at = state.token_for(key)
    # Key order as recorded: access_token, expires_at (milliseconds since the epoch).
    return Reply(200, dumps({"access_token": token, "expires_at": expires_at}), OAUTH_JSON_TYPE)
