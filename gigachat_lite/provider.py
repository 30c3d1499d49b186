"""``GigaChat``: a drop-in for gpt4free's GigaChat provider, on top of the sync client.

It keeps the provider's contract (class attributes, ``get_model``,
``create_async_generator``, ``create_completion``) and fixes its faults: each
key has its own token, ``proxy`` is used, a 401 is recovered once, and the
Russian Trusted Root CA is verified rather than written and hoped for. With
gpt4free installed it is a real gpt4free provider (see :mod:`.provider_g4f`).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import requests

from .auth import Token
from .bridge import AsyncStream
from .certs import russian_ca_pem
from .config import DEFAULT_SCOPE, Config
from .payloads import ChatParams, prepare_chat
from .provider_g4f import (
    G4FReply, called_from_gpt4free, functions_from_tools, key_for, messages_from_openai, with_gpt4free_bases,
)
from .session import Session, shared_session
from .stream import ChatStream

__all__ = ["GigaChat"]

log = logging.getLogger("gigachat_lite")

# Body parameters gpt4free callers may pass; its own keywords (provider, media,
# conversation, ignore_stream, web_search, ...) never reach the request.
_BODY_KEYWORDS = frozenset(ChatParams.__annotations__)
# Configuration keywords accepted besides the contract's own arguments.
_CONFIG_KEYWORDS = (
    "base_url", "auth_url", "ca_bundle", "access_token", "timeout", "max_retries", "verify",
    "coordination", "coordination_fallback", "max_concurrency",
)

# (sequence number, token): the newest of a caller's visible tokens wins.
_Stamped = Tuple[int, Token]
_last_token: "contextvars.ContextVar[Optional[_Stamped]]" = contextvars.ContextVar("gigachat_lite_last_token", default=None)
# A task's context dies with asyncio.run(); the seed's `asyncio.run(...)` then
# `GigaChat().access_token` reads the token from this thread's last call instead.
_thread_last = threading.local()
_sequence = itertools.count(1)


def _publish(token: Optional[Token]) -> None:
    """Called in the caller's context (and thread) when a call ends."""
    if token is not None:
        stamped = (next(_sequence), token)
        _last_token.set(stamped)
        _thread_last.stamped = stamped


def _own_token() -> Optional[Token]:
    own = _last_token.get()
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # outside any event loop: also what this thread's last run obtained
        in_thread: Optional[_Stamped] = getattr(_thread_last, "stamped", None)
        if in_thread is not None and (own is None or in_thread[0] > own[0]):
            own = in_thread
    # Inside a loop each task sees only its own calls, never a sibling's.
    return own[1] if own is not None else None


class _LastToken:
    """``access_token`` / ``token_expires_at``: the caller's own last token.

    gpt4free kept one class-wide token for every key in the process. Here a
    task sees the token of its own last call; code outside an event loop sees
    the last token obtained in its thread, its own calls' or those of an
    ``asyncio.run(...)`` it made (whose task context is gone by then). Another
    thread, or another task, never sees it.
    """

    def __init__(self, field: str) -> None:
        self.field = field

    def __get__(self, instance: Any, owner: Any) -> Any:
        token = _own_token()
        if token is None:
            return "" if self.field == "value" else 0
        return token.value if self.field == "value" else int(token.expires_at * 1000)


class _PemText:
    def __get__(self, instance: Any, owner: Any) -> str:
        return russian_ca_pem()  # read on first use, not at import


class GigaChat:
    """gpt4free's ``GigaChat`` provider contract, backed by gigachat_lite.

    With gpt4free installed, also a subclass of its ``AsyncGeneratorProvider``
    and ``ProviderModelMixin``, usable as ``provider=`` of its clients.
    """

    label = "GigaChat"
    url = "https://developers.sber.ru/gigachat"
    login_url = "https://developers.sber.ru/studio/"
    working = True
    needs_auth = True
    supports_stream = True
    supports_system_message = True
    supports_message_history = True
    # gpt4free then passes tools= through instead of emulating them in the prompt.
    supports_native_tools = True
    default_model = "GigaChat"
    models: List[str] = ["GigaChat-2", "GigaChat-2-Pro", "GigaChat-2-Max", "GigaChat", "GigaChat-Pro", "GigaChat-Max"]
    # The seed's older names still work: GigaChat:latest was the base model,
    # GigaChat-Plus its long-context twin, both now served by GigaChat.
    model_aliases: Dict[str, str] = {"GigaChat:latest": "GigaChat", "GigaChat-Plus": "GigaChat"}

    access_token = _LastToken("value")
    token_expires_at = _LastToken("expires_at")
    RUSSIAN_CA_CERT = _PemText()

    @classmethod
    def get_model(cls, model: Optional[str], **kwargs: Any) -> str:
        """gpt4free's rules: empty or "auto" gives the default; then aliases, an
        exact and a suffix match, all case-insensitive; unknown names pass through."""
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a str, got {type(model).__name__}")
        if not model or model == "auto":
            return cls.default_model
        lowered = model.lower()
        for alias, target in cls.model_aliases.items():
            if alias.lower() == lowered:
                return target
        for known in cls.models:
            if known.lower() == lowered:
                return known
        for known in cls.models:
            if known.lower().endswith(lowered) or lowered.endswith(known.lower()):
                return known
        return model

    @classmethod
    def get_models(cls, api_key: Optional[str] = None, **kwargs: Any) -> List[str]:
        """Chat model ids from ``GET /models`` when a key is at hand, else the static list."""
        try:
            session = cls._session(api_key=key_for(cls.__name__, api_key), proxy=kwargs.get("proxy"),
                                   scope=kwargs.get("scope"), kwargs=kwargs)
        except Exception:
            return list(cls.models)
        try:
            ids = [m["id"] for m in session.models() if _is_chat_model(m)]
        except Exception as exc:  # a listing is a convenience: fall back rather than fail a UI
            log.debug("model listing failed (%s); using the static list", type(exc).__name__)
            return list(cls.models)
        return ids or list(cls.models)

    @classmethod
    def create_async_generator(
        cls, model: str, messages: Any, stream: bool = True, proxy: Optional[str] = None, api_key: Optional[str] = None,
        connector: Any = None, scope: str = DEFAULT_SCOPE, update_interval: float = 0, **kwargs: Any,
    ) -> "AsyncStream[Any]":
        """An async iterator of text chunks (also usable with ``async with``).

        ``str`` chunks only, except for gpt4free's own code, which also gets its
        ``Usage``, ``ToolCalls`` and ``FinishReason`` after the text. The reply's
        ``usage``, ``finish_reason`` and ``function_call`` are readable on the
        stream once it has ended.
        """
        rich = called_from_gpt4free(1)
        session, body = cls._prepare(model, messages, stream, proxy, api_key, connector, scope, update_interval, kwargs)

        def start() -> Iterable[Any]:
            reply = session.send_chat(body)
            return G4FReply(reply) if rich else reply

        def publish(_: Any) -> None:  # in the consumer's context, so the caller sees its own token
            _publish(session.token)

        return AsyncStream(start, on_end=publish)

    @classmethod
    def create_completion(
        cls, model: str, messages: Any, stream: bool = True, proxy: Optional[str] = None, api_key: Optional[str] = None,
        connector: Any = None, scope: str = DEFAULT_SCOPE, update_interval: float = 0, **kwargs: Any,
    ) -> Iterator[Any]:
        """The same as :meth:`create_async_generator`, as a plain generator."""
        rich = called_from_gpt4free(1)
        session, body = cls._prepare(model, messages, stream, proxy, api_key, connector, scope, update_interval, kwargs)
        return _completion(session, body, rich)

    # -- shared by both paths ------------------------------------------------------------

    @classmethod
    def _prepare(
        cls,
        model: str,
        messages: Any,
        stream: bool,
        proxy: Optional[str],
        api_key: Optional[str],
        connector: Any,
        scope: Optional[str],
        update_interval: float,
        kwargs: Dict[str, Any],
    ) -> Tuple[Session, Dict[str, Any]]:
        """Validate everything now; return the session and body for the call made later."""
        session = cls._session(api_key=key_for(cls.__name__, api_key), proxy=proxy, scope=scope,
                               kwargs=kwargs, connector=connector)
        params = {k: v for k, v in kwargs.items() if k in _BODY_KEYWORDS}
        if kwargs.get("tools"):
            if params.get("functions"):
                raise ValueError("pass tools= or functions=, not both")
            params["functions"], choice = functions_from_tools(kwargs["tools"], kwargs.get("tool_choice"))
            params["function_call"] = choice if choice is not None else params.get("function_call")
        dropped = sorted(set(kwargs) - _BODY_KEYWORDS - set(_CONFIG_KEYWORDS) - {"tools", "tool_choice"})
        if dropped:
            log.debug("not sent to GigaChat: %s", ", ".join(dropped))
        body = prepare_chat(
            messages_from_openai(messages), model=cls.get_model(model), stream=bool(stream),
            update_interval=update_interval or None, params=params,
        )
        return session, body

    @classmethod
    def _session(
        cls,
        *,
        api_key: Optional[str],
        proxy: Optional[str],
        scope: Optional[str],
        kwargs: Mapping[str, Any],
        connector: Any = None,
    ) -> Session:
        if connector is not None:
            return _from_connector(connector, api_key=api_key, proxy=proxy)
        config = Config.resolve(
            api_key=api_key, proxy=proxy, scope=scope, **{k: kwargs[k] for k in _CONFIG_KEYWORDS if k in kwargs}
        )
        return shared_session(config)


if not TYPE_CHECKING:  # to a type checker GigaChat is the class above, whether gpt4free is installed or not
    GigaChat = with_gpt4free_bases(GigaChat)


def _is_chat_model(entry: Any) -> bool:
    # /models lists embedders too ("type": "embedder"); older replies have no type.
    return isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry.get("type", "chat") == "chat"


def _from_connector(connector: Any, *, api_key: Optional[str], proxy: Optional[str]) -> Session:
    if isinstance(connector, Session):
        config = connector.config
        if api_key is not None and api_key != config.api_key:
            raise ValueError("api_key differs from the connector Session's key; configure one or the other")
        if proxy is not None and proxy != config.proxy:
            raise ValueError("proxy differs from the connector Session's proxy; configure it on the Session")
        return connector
    if isinstance(connector, requests.Session):
        # A plain requests.Session: reuse its connection pools (what a connector
        # is for) under our auth, CA and error handling.
        session = Session(api_key=api_key, proxy=proxy)
        session.adapters = connector.adapters
        return session
    raise TypeError(
        f"connector must be a requests.Session (for example a gigachat_lite.Session), got {type(connector).__name__}; "
        "aiohttp connectors are not used by gigachat_lite"
    )


def _completion(session: Session, body: Dict[str, Any], rich: bool) -> Iterator[Any]:
    reply = session.send_chat(body)
    try:
        yield from (G4FReply(reply) if rich else reply)
    finally:
        if isinstance(reply, ChatStream):
            reply.close()
        _publish(session.token)
