"""``GigaChat``: a drop-in for gpt4free's GigaChat provider, on top of the sync client.

It keeps the provider's contract (class attributes, ``get_model``,
``create_async_generator``, ``create_completion``) and fixes its faults: each
key has its own token, ``proxy`` is used, a 401 is recovered once, and the
Russian Trusted Root CA is verified rather than written and hoped for.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import requests

from .auth import Token
from .bridge import AsyncStream
from .certs import russian_ca_pem
from .config import DEFAULT_SCOPE, Config
from .payloads import ChatParams, prepare_chat
from .session import Session, shared_session
from .stream import ChatStream

__all__ = ["GigaChat"]

log = logging.getLogger("gigachat_lite")

# Body parameters gpt4free callers may pass; its own keywords (provider, media,
# conversation, ignore_stream, web_search, ...) never reach the request.
_BODY_KEYWORDS = frozenset(ChatParams.__annotations__)
# Configuration keywords accepted besides the contract's own arguments.
_CONFIG_KEYWORDS = ("base_url", "auth_url", "ca_bundle", "access_token", "timeout", "max_retries", "verify")

_last_token: "contextvars.ContextVar[Optional[Token]]" = contextvars.ContextVar("gigachat_lite_last_token", default=None)


class _LastToken:
    """``access_token`` / ``token_expires_at``: the caller's own last token.

    gpt4free kept one class-wide token for every key in the process. Here the
    value is per context (thread or task): a caller sees the token of its own
    last call, never another key's.
    """

    def __init__(self, field: str) -> None:
        self.field = field

    def __get__(self, instance: Any, owner: Any) -> Any:
        token = _last_token.get()
        if token is None:
            return "" if self.field == "value" else 0
        return token.value if self.field == "value" else int(token.expires_at * 1000)


class _PemText:
    def __get__(self, instance: Any, owner: Any) -> str:
        return russian_ca_pem()  # read on first use, not at import


def _plain_messages(messages: Any) -> Any:
    # gpt4free messages may carry content as a list of parts; GigaChat wants text.
    if not isinstance(messages, (list, tuple)):
        return messages
    result = []
    for message in messages:
        if isinstance(message, Mapping) and isinstance(message.get("content"), list):
            parts = message["content"]
            text = "".join(p.get("text", "") for p in parts if isinstance(p, Mapping) and p.get("type", "text") == "text")
            message = {**message, "content": text}
        result.append(message)
    return result


class GigaChat:
    """gpt4free's ``GigaChat`` provider contract, backed by gigachat_lite."""

    label = "GigaChat"
    url = "https://developers.sber.ru/gigachat"
    login_url = "https://developers.sber.ru/studio/"
    working = True
    needs_auth = True
    supports_stream = True
    supports_system_message = True
    supports_message_history = True
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
        """gpt4free's rules: empty or "auto" gives the default; aliases; then a
        case-insensitive exact or suffix match; unknown names pass through."""
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a str, got {type(model).__name__}")
        if not model or model == "auto":
            return cls.default_model
        if model in cls.model_aliases:
            return cls.model_aliases[model]
        if model in cls.models:
            return model
        lowered = model.lower()
        for known in cls.models:
            if known.lower() == lowered:
                return known
        for known in cls.models:
            if known.lower().endswith(lowered) or lowered.endswith(known.lower()):
                return known
        return model

    @classmethod
    def get_models(cls, api_key: Optional[str] = None, **kwargs: Any) -> List[str]:
        """Model ids from ``GET /models`` when a key is at hand, else the static list."""
        try:
            session = cls._session(api_key=api_key, proxy=kwargs.get("proxy"), scope=kwargs.get("scope"), kwargs=kwargs)
        except Exception:
            return list(cls.models)
        try:
            ids = [m["id"] for m in session.models() if isinstance(m, dict) and isinstance(m.get("id"), str)]
        except Exception as exc:  # a listing is a convenience: fall back rather than fail a UI
            log.debug("model listing failed (%s); using the static list", type(exc).__name__)
            return list(cls.models)
        return ids or list(cls.models)

    @classmethod
    def create_async_generator(
        cls,
        model: str,
        messages: Any,
        stream: bool = True,
        proxy: Optional[str] = None,
        api_key: Optional[str] = None,
        connector: Any = None,
        scope: str = DEFAULT_SCOPE,
        update_interval: float = 0,
        **kwargs: Any,
    ) -> "AsyncStream[str]":
        """An async iterator of text chunks (also usable with ``async with``)."""
        session, body = cls._prepare(model, messages, stream, proxy, api_key, connector, scope, update_interval, kwargs)

        def publish(_: Any) -> None:  # in the consumer's context, so the caller sees its own token
            _last_token.set(session.token)

        return AsyncStream(lambda: session.send_chat(body), on_end=publish)

    @classmethod
    def create_completion(
        cls,
        model: str,
        messages: Any,
        stream: bool = True,
        proxy: Optional[str] = None,
        api_key: Optional[str] = None,
        connector: Any = None,
        scope: str = DEFAULT_SCOPE,
        update_interval: float = 0,
        **kwargs: Any,
    ) -> Iterator[str]:
        """The same as :meth:`create_async_generator`, as a plain generator."""
        session, body = cls._prepare(model, messages, stream, proxy, api_key, connector, scope, update_interval, kwargs)
        return _completion(session, body)

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
        session = cls._session(api_key=api_key, proxy=proxy, scope=scope, kwargs=kwargs, connector=connector)
        params = {k: v for k, v in kwargs.items() if k in _BODY_KEYWORDS}
        dropped = sorted(set(kwargs) - _BODY_KEYWORDS - set(_CONFIG_KEYWORDS))
        if dropped:
            log.debug("not sent to GigaChat: %s", ", ".join(dropped))
        body = prepare_chat(
            _plain_messages(messages), model=cls.get_model(model), stream=bool(stream),
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


def _completion(session: Session, body: Dict[str, Any]) -> Iterator[str]:
    reply = session.send_chat(body)
    try:
        yield from reply
    finally:
        if isinstance(reply, ChatStream):
            reply.close()
        _last_token.set(session.token)
