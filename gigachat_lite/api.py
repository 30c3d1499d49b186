"""The module-level calls: ``chat("Привет")``, ``models()``, ... on the process's shared session.

Each is the :class:`~gigachat_lite.Session` method of the same name, called on
``session=`` or on the shared session for the given configuration keywords,
as ``requests.get`` is ``Session.request``: the calls themselves are defined
once, in :mod:`gigachat_lite.session`. Sessions with equal configurations share
one connection pool and one token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Literal, Mapping, Optional, Type, TypeVar, Union, overload

from ._assistants import Assistants
from ._chat.request import Messages, Prepared, prepare
from ._threads import Threads
from .config import FIELD_NAMES, Config
from .results import ChatReply, Embeddings, TokenCount
from .session import DEFAULT_EMBEDDINGS_MODEL, FileArg, Session, Texts, shared_session
from .stream import ChatStream
from .structured import parse_reply

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._chat.request import ChatOptions, ParseOptions
    from .config import ConnectionOptions, Options

__all__ = [
    "ChatCall", "prepare_call", "chat", "parse", "ai_check", "functions_convert", "models", "model", "embeddings", "tokens_count", "balance",
    "upload_file", "files", "file", "delete_file", "file_content", "assistants", "threads",
]


# Settings that are configuration fields and also per call: a call's own value goes into its body
# or headers, so calls that differ only in them share one session.
T = TypeVar("T")

_PER_CALL = ("model", "api_version", "session_id", "client_id", "trace_id", "flags", "profanity_check")


def _target(session: Optional[Session], options: Mapping[str, Any]) -> Session:
    if session is None:
        return shared_session(Config.resolve(**options))
    if options:
        raise TypeError(f"pass session= or configuration keywords, not both (got {', '.join(sorted(options))})")
    return session


class ChatCall:
    """A chat call checked and built, not yet sent: ``call.send()`` sends it (blocking)."""

    __slots__ = ("session", "config", "prepared")

    def __init__(self, session: Optional[Session], config: Config, prepared: Prepared) -> None:
        self.session = session
        self.config = config
        self.prepared = prepared

    def send(self) -> Union[ChatStream, ChatReply]:
        """Send on the given session, else the shared one for the configuration."""
        return (self.session or shared_session(self.config)).send_chat(self.prepared)


def prepare_call(
    messages: Messages,
    *,
    stream: bool = True,
    update_interval: Optional[float] = None,
    session: Optional[Session] = None,
    **options: "Unpack[ChatOptions]",
) -> ChatCall:
    """Check everything :func:`chat` takes and build its body, with no I/O (safe on an event loop).

    Configuration keywords and body settings are told apart by name; the
    configuration is resolved here, so a missing key or a bad setting raises now.
    """
    settings: Dict[str, Any] = {name: value for name, value in options.items() if name in FIELD_NAMES and name not in _PER_CALL}
    params = {name: value for name, value in options.items()
              if name not in FIELD_NAMES or name in _PER_CALL and name not in ("model", "api_version")}
    target = None if session is None else _target(session, settings)
    config = Config.resolve(**settings) if target is None else target.config
    defaults = {"flags": config.flags and list(config.flags), "profanity_check": config.profanity_check}
    prepared = prepare(
        messages, model=Config.check("model", options.get("model")) or config.model, stream=stream,
        update_interval=update_interval, params=params,
        api_version=Config.check("api_version", options.get("api_version")) or config.api_version, defaults=defaults,
        model_given=options.get("model") is not None,
    )
    return ChatCall(session, config, prepared)


@overload
def chat(
    messages: Messages, *, stream: Literal[True] = ..., update_interval: Optional[float] = ..., session: Optional[Session] = ...,
    **options: "Unpack[ChatOptions]",
) -> ChatStream: ...  # noqa: E704


@overload
def chat(
    messages: Messages, *, stream: Literal[False], update_interval: Optional[float] = ..., session: Optional[Session] = ...,
    **options: "Unpack[ChatOptions]",
) -> ChatReply: ...  # noqa: E704


@overload
def chat(
    messages: Messages, *, stream: bool, update_interval: Optional[float] = ..., session: Optional[Session] = ...,
    **options: "Unpack[ChatOptions]",
) -> Union[ChatStream, ChatReply]: ...  # noqa: E704


def chat(
    messages: Messages,
    *,
    stream: bool = True,
    update_interval: Optional[float] = None,
    session: Optional[Session] = None,
    **options: "Unpack[ChatOptions]",
) -> Union[ChatStream, ChatReply]:
    """Ask GigaChat; return a :class:`ChatStream` (default) or, with ``stream=False``, a :class:`ChatReply`.

    ``messages`` is a ``str`` or a list of ``{"role", "content"}`` dicts. The
    configuration keywords (``api_key``, ``model``, ``timeout``, ...) fall back
    to ``GIGACHAT_*`` environment variables; or pass ``session=``. Every other
    keyword goes into the JSON body (``temperature``, ``max_tokens``,
    ``functions``, ...), ``None`` values left out. The request is sent now; a
    stream is read as you iterate it.

    Raises:
        MissingAuthError, ValueError, TypeError: before any request.
        AuthenticationError, APIError (and subclasses), TransportError, StreamError.
    """
    return prepare_call(messages, stream=stream, update_interval=update_interval, session=session, **options).send()


@overload
def parse(messages: Messages, response_format: Type[T], *, session: Optional[Session] = ..., **options: "Unpack[ParseOptions]") -> T: ...  # noqa: E704


@overload
def parse(messages: Messages, response_format: Any, *, session: Optional[Session] = ..., **options: "Unpack[ParseOptions]") -> Any: ...  # noqa: E704


def parse(messages: Messages, response_format: Any, *, session: Optional[Session] = None, **options: "Unpack[ParseOptions]") -> Any:
    """Ask for structured output and return it parsed: :meth:`Session.parse`.

    ``response_format`` is a JSON schema dict, a regex format or ``re.Pattern``,
    a pydantic model, a dataclass or a TypedDict class. Takes :func:`chat`'s
    keywords; the request is not streamed.

    Raises:
        StructuredOutputError: the reply does not match; and whatever :func:`chat` raises.
    """
    reply = prepare_call(messages, stream=False, session=session, **{**options, "response_format": response_format}).send()
    return parse_reply(reply, response_format)


def models(*, session: Optional[Session] = None, **options: "Unpack[Options]") -> List[Dict[str, Any]]:
    """``GET /models``: :meth:`Session.models` on ``session`` or the shared session."""
    return _target(session, options).models()


def model(model_id: str, *, session: Optional[Session] = None, **options: "Unpack[Options]") -> Dict[str, Any]:
    """``GET /models/{id}``: :meth:`Session.model`."""
    return _target(session, options).model(model_id)


def embeddings(
    texts: Texts, model: str = DEFAULT_EMBEDDINGS_MODEL, *, session: Optional[Session] = None, **options: "Unpack[ConnectionOptions]"
) -> Embeddings:
    """``POST /embeddings``: :meth:`Session.embeddings`."""
    return _target(session, options).embeddings(texts, model)


def tokens_count(
    texts: Texts, model: Optional[str] = None, *, session: Optional[Session] = None, **options: "Unpack[ConnectionOptions]"
) -> List[TokenCount]:
    """``POST /tokens/count``: :meth:`Session.tokens_count`."""
    return _target(session, options).tokens_count(texts, model)


def balance(*, session: Optional[Session] = None, **options: "Unpack[Options]") -> Dict[str, int]:
    """``GET /balance``: :meth:`Session.balance`."""
    return _target(session, options).balance()


def upload_file(
    path_or_fileobj: FileArg,
    purpose: str = "general",
    *,
    filename: Optional[str] = None,
    mime_type: Optional[str] = None,
    session: Optional[Session] = None,
    **options: "Unpack[Options]",
) -> Dict[str, Any]:
    """``POST /files``: :meth:`Session.upload_file`."""
    return _target(session, options).upload_file(path_or_fileobj, purpose, filename=filename, mime_type=mime_type)


def files(*, session: Optional[Session] = None, **options: "Unpack[Options]") -> List[Dict[str, Any]]:
    """``GET /files``: :meth:`Session.files`."""
    return _target(session, options).files()


def file(file_id: str, *, session: Optional[Session] = None, **options: "Unpack[Options]") -> Dict[str, Any]:
    """``GET /files/{id}``: :meth:`Session.file`."""
    return _target(session, options).file(file_id)


def delete_file(file_id: str, *, session: Optional[Session] = None, **options: "Unpack[Options]") -> Dict[str, Any]:
    """``POST /files/{id}/delete``: :meth:`Session.delete_file`."""
    return _target(session, options).delete_file(file_id)


def file_content(file_id: str, *, session: Optional[Session] = None, **options: "Unpack[Options]") -> bytes:
    """``GET /files/{id}/content``: :meth:`Session.file_content`."""
    return _target(session, options).file_content(file_id)


def ai_check(
    text: str, model: Optional[str] = None, *, session: Optional[Session] = None, **options: "Unpack[ConnectionOptions]"
) -> Dict[str, Any]:
    """``POST /ai/check``: :meth:`Session.ai_check`."""
    return _target(session, options).ai_check(text, model)


def functions_convert(
    openapi: Union[str, Dict[str, Any]], *, session: Optional[Session] = None, **options: "Unpack[Options]"
) -> List[Dict[str, Any]]:
    """``POST /functions/convert``: :meth:`Session.functions_convert`."""
    return _target(session, options).functions_convert(openapi)


def _shared() -> Session:
    # Resolved at each call, so that the namespaces below follow GIGACHAT_* and reset().
    return shared_session(Config.resolve())


assistants = Assistants(_shared)
"""The assistants API on the shared session of the environment's configuration (``GIGACHAT_*``): :class:`Assistants`.

For other settings, ``Session(...).assistants``.
"""

threads = Threads(_shared)
"""The threads API on the shared session of the environment's configuration (``GIGACHAT_*``): :class:`Threads`.

For other settings, ``Session(...).threads``.
"""
