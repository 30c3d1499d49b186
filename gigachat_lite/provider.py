"""``GigaChat``: a drop-in for gpt4free's GigaChat provider, on top of the sync client.

It keeps the provider's contract (class attributes, ``get_model``,
``create_async_generator``, ``create_completion``) and fixes its faults: each
key has its own token, ``proxy`` is used, a 401 is recovered once, and the
Russian Trusted Root CA is verified rather than written and hoped for.

gpt4free is optional. When it is installed (it is imported with this module,
on first use of ``gigachat_lite.GigaChat``, never by ``import
gigachat_lite``), the provider really subclasses its ``AsyncGeneratorProvider``
and ``ProviderModelMixin``, and speaks its types to its own code: ``Usage``
(the server's counts), ``ToolCalls`` and ``FinishReason`` after the text. Every
other caller gets ``str`` chunks only, installed or not.

OpenAI-style ``tools``/``tool_choice`` and tool messages become GigaChat's
``functions``/``function_call`` and ``function`` messages, and a function call
comes back as an OpenAI tool call whose id is the reply's
``functions_state_id``, so the follow-up request can send it back. Images and
files, as OpenAI ``image_url``/``file`` parts or gpt4free's ``media=``, are
uploaded (once per distinct file) and sent as attachments.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import itertools
import json
import logging
import sys
import threading
import types
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, TypeVar, cast

import requests

from ._attachments import with_media
from ._bridge import AsyncStream
from ._chat.request import ChatParams, Prepared, V2Params, prepare
from ._http.certs import russian_ca_pem
from ._http.deadline import cancellable
from .auth import Token
from .config import DEFAULT_SCOPE, Config
from .session import Session, shared_session
from .stream import ChatStream

__all__ = ["GigaChat"]

log = logging.getLogger("gigachat_lite")

# -- the gpt4free glue ------------------------------------------------------------------------
try:
    # importlib rather than an import statement: gpt4free ships no type hints, and
    # mypy should neither follow it nor demand it to be installed.
    _base: Any = importlib.import_module("g4f.providers.base_provider")
    _response: Any = importlib.import_module("g4f.providers.response")
except ImportError:
    _base = _response = None

INSTALLED = _base is not None

# What a GigaChat function description may hold (OpenAI's "strict" and the like are not sent).
_FUNCTION_FIELDS = ("name", "description", "parameters", "few_shot_examples", "return_parameters")
# GigaChat's finish reasons that OpenAI (and so gpt4free) names differently.
_FINISH = {"function_call": "tool_calls", "blacklist": "content_filter"}

C = TypeVar("C", bound=type)


def with_gpt4free_bases(cls: C) -> C:
    """``cls`` itself without gpt4free; with it, a subclass that also has gpt4free's provider bases.

    ``cls`` comes first in the method order, so its contract wins over the
    bases' defaults; gpt4free's helpers (``get_dict``, ``get_parent``,
    ``get_parameters``, ``live``, ...) are the bases' own.
    """
    if not INSTALLED:
        return cls
    bases = (cls, _base.AsyncGeneratorProvider, _base.ProviderModelMixin)
    names = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return cast(C, types.new_class(cls.__name__, bases, exec_body=lambda ns: ns.update(names)))


def called_from_gpt4free(depth: int) -> bool:
    """Whether the function ``depth`` frames up was called by gpt4free's own code.

    gpt4free calls a provider from its clients, ``ChatCompletion`` and retry
    providers, and understands its result types; a plain caller joins ``str``
    chunks. The caller's module is the only thing that tells them apart (gpt4free
    passes no marker).
    """
    if not INSTALLED:
        return False
    caller = sys._getframe(depth + 1).f_globals.get("__name__", "")
    return bool(caller == "g4f" or caller.startswith("g4f."))


def key_for(provider: str, api_key: Any) -> Any:
    """gpt4free's clients accept ``api_key={"Provider": key, ...}``: pick this provider's key."""
    if isinstance(api_key, Mapping):
        return api_key.get(provider)
    return api_key


# -- OpenAI tools -> GigaChat functions ---------------------------------------------------


def functions_from_tools(tools: Any, tool_choice: Any) -> Tuple[List[Dict[str, Any]], Any]:
    """OpenAI ``tools`` and ``tool_choice`` as GigaChat ``functions`` and ``function_call``.

    ``tool_choice`` ``"required"`` names the only tool when there is one and is
    ``"auto"`` otherwise (GigaChat cannot demand "some function").

    Raises:
        TypeError, ValueError: naming the bad tool, before any request.
    """
    if not isinstance(tools, (list, tuple)):
        raise TypeError(f"tools must be a list of tool dicts, got {type(tools).__name__}")
    functions = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function" or not isinstance(function, Mapping):
            raise ValueError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}}, got {tool!r}")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise ValueError(f"tools[{i}]['function'] must have a non-empty 'name'")
        functions.append({k: v for k, v in function.items() if k in _FUNCTION_FIELDS})
    if tool_choice is None or tool_choice in ("auto", "none"):
        return functions, tool_choice
    if tool_choice == "required":
        return functions, {"name": functions[0]["name"]} if len(functions) == 1 else "auto"
    chosen = tool_choice.get("function") if isinstance(tool_choice, Mapping) else None
    if isinstance(chosen, Mapping) and isinstance(chosen.get("name"), str):
        if chosen["name"] not in [f["name"] for f in functions]:
            raise ValueError(f"tool_choice names {chosen['name']!r}, which is not among the tools")
        return functions, {"name": chosen["name"]}
    raise ValueError(
        "tool_choice must be 'auto', 'none', 'required' or {'type': 'function', 'function': {'name': ...}}, "
        f"got {tool_choice!r}"
    )


def _arguments(value: Any, where: str) -> Dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            raise ValueError(f"{where}: arguments is not JSON GigaChat can take") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: arguments must be a JSON object")
    return value


def _is_state_id(call_id: Any) -> bool:
    try:
        uuid.UUID(str(call_id))
    except ValueError:
        return False
    return True


def _function_content(content: Any) -> str:
    # GigaChat takes a function's result as a JSON object; OpenAI tool results are any text.
    if isinstance(content, str):
        try:
            if isinstance(json.loads(content), dict):
                return content
        except (ValueError, RecursionError):
            pass
    return json.dumps({"result": content}, ensure_ascii=False)


def _plain_text(message: Any) -> Any:
    # gpt4free messages may carry content as a list of parts; GigaChat wants text. Parts with
    # images or files stay: the request's checks upload them (_attachments.py).
    if isinstance(message, Mapping) and isinstance(message.get("content"), list):
        parts = message["content"]
        if all(isinstance(p, Mapping) and p.get("type", "text") == "text" and "text" in p for p in parts):
            return {**message, "content": "".join(p["text"] for p in parts if isinstance(p["text"], str))}
    return message


def _as_dict(value: Any) -> Any:
    """An OpenAI-style message or tool call given as an object (gpt4free's reply message, a pydantic
    model or, without pydantic, gpt4free's plain stand-in) as the dict it stands for."""
    if isinstance(value, Mapping) or isinstance(value, (str, bytes)) or value is None:
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    if hasattr(value, "__dict__") and (hasattr(value, "role") or hasattr(value, "function") or hasattr(value, "name")):
        return {key: _as_dict(item) if not isinstance(item, list) else [_as_dict(i) for i in item]
                for key, item in vars(value).items()}
    return value


def _message_dict(message: Any) -> Any:
    if isinstance(message, Mapping):
        return message
    found = _as_dict(message)
    if not isinstance(found, Mapping):
        return message
    # An object's dump has every field of the model (None for most): keep a message's own.
    return {key: value for key, value in found.items()
            if key in ("role", "content", "name", "tool_calls", "tool_call_id") and value is not None}


def messages_from_openai(messages: Any, v2: bool = False) -> Any:
    """OpenAI-style messages as GigaChat's: content parts joined into text, tool turns translated.

    v1: ``tool_calls`` (one) becomes ``function_call`` (with
    ``functions_state_id``), a ``tool`` message a ``function`` one. v2: the calls
    become ``function_call`` parts with their ids (several at once) and each
    ``tool`` message a ``function_result`` part answering its call's id. Other
    messages pass unchanged; anything that is not a list is left for the usual
    validation to refuse.

    Raises:
        ValueError: naming the message GigaChat cannot take.
    """
    if not isinstance(messages, (list, tuple)):
        return messages
    messages = [_plain_text(_message_dict(m)) for m in messages]
    if not any(isinstance(m, Mapping) and (m.get("role") == "tool" or m.get("tool_calls")) for m in messages):
        return messages
    names: Dict[str, str] = {}
    result = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            result.append(message)
            continue
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            calls = [_as_dict(call) for call in calls]
            message = {**message, "tool_calls": calls}
        if message.get("role") == "assistant" and calls and v2:
            result.append(_calls_v2(message, names, i))
        elif message.get("role") == "tool" and v2:
            call_id = str(message.get("tool_call_id"))
            name = names.get(call_id) or message.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"messages[{i}]: a tool result needs the assistant's tool call before it (or a 'name')")
            answer = {"name": name, "result": json.loads(_function_content(message.get("content")))}
            result.append({"role": "tool", "content": [{"function_result": {"id": call_id, **answer} if call_id in names else answer}]})
        elif message.get("role") == "assistant" and calls:
            if not isinstance(calls, list) or len(calls) != 1 or not isinstance(calls[0], Mapping):
                raise ValueError(f"messages[{i}]: v1 takes one function call per assistant turn (several need api_version='v2')")
            call = calls[0]
            function: Mapping[str, Any] = call["function"] if isinstance(call.get("function"), Mapping) else {}
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"messages[{i}]['tool_calls'][0] has no function name")
            names[str(call.get("id"))] = name
            turn: Dict[str, Any] = {
                "role": "assistant", "content": message.get("content") or "",
                "function_call": {"name": name, "arguments": _arguments(function.get("arguments"), f"messages[{i}]")},
            }
            if _is_state_id(call.get("id")):
                turn["functions_state_id"] = str(call.get("id"))
            result.append(turn)
        elif message.get("role") == "tool":
            # gpt4free may have guessed a "name" from the id; the call itself knows it.
            name = names.get(str(message.get("tool_call_id"))) or message.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"messages[{i}]: a tool result needs the assistant's tool call before it (or a 'name')")
            result.append({"role": "function", "name": name, "content": _function_content(message.get("content"))})
        else:
            result.append(message)
    return result


def _calls_v2(message: Mapping[str, Any], names: Dict[str, str], index: int) -> Dict[str, Any]:
    """An OpenAI assistant turn with tool calls as a v2 one: a ``function_call`` part (with its id) per call."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list) or not all(isinstance(call, Mapping) for call in calls):
        raise ValueError(f"messages[{index}]['tool_calls'] must be a list of tool calls")
    parts: List[Dict[str, Any]] = [{"text": message["content"]}] if isinstance(message.get("content"), str) and message["content"] else []
    for j, call in enumerate(calls):
        function: Mapping[str, Any] = call["function"] if isinstance(call.get("function"), Mapping) else {}
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"messages[{index}]['tool_calls'][{j}] has no function name")
        call_id = str(call.get("id")) if call.get("id") else None
        if call_id:
            names[call_id] = name
        arguments = _arguments(function.get("arguments"), f"messages[{index}]['tool_calls'][{j}]")
        parts.append({"function_call": {"id": call_id, "name": name, "arguments": arguments} if call_id else
                      {"name": name, "arguments": arguments}})
    return {"role": "assistant", "content": parts}


# -- GigaChat reply -> gpt4free types ----------------------------------------------------


class G4FReply:
    """A chat reply read for gpt4free: the text chunks, then ``Usage``, ``ToolCalls``, ``FinishReason``.

    Wraps a ``ChatStream``/``ChatReply`` and forwards its attributes, ``close``
    and ``abort``, so the async adapter can stop it and read ``usage`` on it.
    """

    def __init__(self, reply: Any) -> None:
        self._reply = reply

    def __iter__(self) -> Iterator[Any]:
        reply = self._reply
        yield from reply
        if reply.usage:
            yield _usage(reply.usage)
        calls = getattr(reply, "tool_calls", None) or []
        if calls:
            found = []
            for call in calls:
                # v1 calls carry no id: the state id (a UUID) brings the state back with the result.
                call_id = call.id or (reply.functions_state_id if len(calls) == 1 else None) or f"call_{uuid.uuid4().hex}"
                arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments, ensure_ascii=False)
                found.append({"id": call_id, "type": "function", "function": {"name": call.name, "arguments": arguments}})
            yield _response.ToolCalls(found)
        if reply.finish_reason:
            yield _response.FinishReason(_FINISH.get(reply.finish_reason, reply.finish_reason))

    def close(self) -> None:
        close = getattr(self._reply, "close", None)
        if close is not None:
            close()

    def abort(self) -> None:
        abort = getattr(self._reply, "abort", None)
        if abort is not None:
            abort()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._reply, name)


def _usage(usage: Mapping[str, Any]) -> Any:
    names = ("prompt_tokens", "completion_tokens", "total_tokens")
    counts: Dict[str, Any] = {k: usage[k] for k in names if isinstance(usage.get(k), int)}
    cached = usage.get("precached_prompt_tokens")
    if isinstance(cached, int):
        counts["prompt_tokens_details"] = {"cached_tokens": cached}
    return _response.Usage(**counts)


# -- the provider ------------------------------------------------------------------------------

# Body parameters gpt4free callers may pass; its own keywords (provider, conversation,
# ignore_stream, web_search, ...) never reach the request, but media= is attached and uploaded.
# (GigaChat's own "tools" list is not among them: gpt4free's tools are OpenAI's, translated below.)
_BODY_KEYWORDS = frozenset(ChatParams.__annotations__) | frozenset(V2Params.__annotations__) - {"tools"}
_V2_KEYWORDS = frozenset(V2Params.__annotations__) - {"tools"}
# Configuration keywords accepted besides the contract's own arguments.
_CONFIG_KEYWORDS = (
    "base_url", "auth_url", "ca_bundle", "access_token", "timeout", "max_retries", "verify",
    "coordination", "coordination_fallback", "max_concurrency", "max_cool_down", "api_version",
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

        def send() -> Iterable[Any]:
            reply = session.send_chat(body)
            return G4FReply(reply) if rich else reply

        def publish(_: Any) -> None:  # in the consumer's context, so the caller sees its own token
            _publish(session.token)

        start, cancel = cancellable(send)
        return AsyncStream(start, on_end=publish, cancel=cancel)

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
    ) -> Tuple[Session, Prepared]:
        """Validate everything now; return the session and request for the call made later.

        gpt4free's ``media=`` (``[(data, filename), ...]``) is attached to the
        last user message and uploaded when the call is made, as any attachment.
        """
        session = cls._session(api_key=key_for(cls.__name__, api_key), proxy=proxy, scope=scope,
                               kwargs=kwargs, connector=connector)
        params = {k: v for k, v in kwargs.items() if k in _BODY_KEYWORDS}
        if kwargs.get("tools"):
            if params.get("functions"):
                raise ValueError("pass tools= or functions=, not both")
            params["functions"], choice = functions_from_tools(kwargs["tools"], kwargs.get("tool_choice"))
            params["function_call"] = choice if choice is not None else params.get("function_call")
        dropped = sorted(set(kwargs) - _BODY_KEYWORDS - set(_CONFIG_KEYWORDS) - {"tools", "tool_choice", "media"})
        if dropped:
            log.debug("not sent to GigaChat: %s", ", ".join(dropped))
        api_version = kwargs.get("api_version") or ("v2" if params.get("parallel_tool_calls") else None)
        v2 = api_version == "v2" or any(params.get(name) is not None for name in _V2_KEYWORDS)  # None: not set
        prepared = prepare(
            with_media(messages_from_openai(messages, v2=v2), kwargs.get("media")), model=cls.get_model(model),
            stream=bool(stream), update_interval=update_interval or None, params=params, api_version="v2" if v2 else "v1",
        )
        return session, prepared

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


def _completion(session: Session, body: Prepared, rich: bool) -> Iterator[Any]:
    reply = session.send_chat(body)
    try:
        yield from (G4FReply(reply) if rich else reply)
    finally:
        if isinstance(reply, ChatStream):
            reply.close()
        _publish(session.token)
