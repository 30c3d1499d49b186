"""What goes on the wire: chat messages validated, chat bodies built, endpoint inputs checked.

No I/O here, so everything can run before a request (and on an event loop):
bad input is a ``TypeError`` or ``ValueError`` that names the bad item.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, TypedDict, Union

from .config import Options
from .messages_v2 import prompt_or_list
from .request_v2 import adapt_v1_params, build_body_v2, choose_contract
from .structured import OutputSpec

__all__ = [
    "ROLES", "Messages", "ChatParams", "V2Params", "ChatBody", "ChatOptions", "Prepared", "normalize_messages", "build_body", "prepare", "prepare_chat",
    "check_param",
]

ROLES = ("system", "user", "assistant", "function")
Messages = Union[str, Sequence[Mapping[str, Any]]]


class ChatParams(TypedDict, total=False):
    """The chat body settings we know (checked before sending); other JSON-able keys pass through."""

    temperature: Optional[float]
    top_p: Optional[float]
    n: Optional[int]
    max_tokens: Optional[int]
    repetition_penalty: Optional[float]
    profanity_check: Optional[bool]
    functions: Optional[Sequence[Mapping[str, Any]]]
    function_call: Optional[Union[str, Mapping[str, Any]]]
    flags: Optional[Sequence[str]]


class V2Params(TypedDict, total=False):
    """Settings for structured output, reasoning and tools; the v2-only ones choose v2 (see :mod:`.request_v2`)."""

    response_format: Any  # a JSON schema dict, {"type": "regex", ...}, an re.Pattern, a dataclass/TypedDict/pydantic class
    reasoning_effort: Optional[str]  # "low", "medium", "high"
    tools: Optional[Sequence[Any]]  # built-in tool names or {"functions": ...}-style dicts
    tool_config: Optional[Mapping[str, Any]]
    model_options: Optional[Mapping[str, Any]]
    storage: Any
    thread_id: Optional[str]
    filter_config: Optional[Mapping[str, Any]]
    user_info: Optional[Mapping[str, Any]]


class ChatBody(ChatParams, V2Params, total=False):
    """Every body setting :meth:`Session.chat` knows (others that JSON can carry pass through)."""


class ChatOptions(Options, ChatBody, total=False):
    """What :func:`gigachat_lite.chat` takes besides ``messages``: configuration and body settings."""


Problem = Optional[Tuple[type, str]]  # (exception class, text) or None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(low: float, high: float = math.inf, *, open_low: bool = False) -> Callable[[Any], Problem]:
    def check(value: Any) -> Problem:
        if not _is_number(value):
            return TypeError, f"must be a finite number, got {value!r}"
        if value < low or value > high or (open_low and value == low):
            bounds = f"{'>' if open_low else '>='} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
            return ValueError, f"must be {bounds}, got {value!r}"
        return None
    return check


def _positive_int(value: Any) -> Problem:
    if isinstance(value, bool) or not isinstance(value, int):
        return TypeError, f"must be an int, got {value!r}"
    return None if value >= 1 else (ValueError, f"must be >= 1, got {value!r}")


def _bool(value: Any) -> Problem:
    return None if isinstance(value, bool) else (TypeError, f"must be a bool, got {value!r}")


def _functions(value: Any) -> Problem:
    if not isinstance(value, (list, tuple)):
        return TypeError, f"must be a list of function descriptions, got {type(value).__name__}"
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            return ValueError, f"[{i}] must be a dict with a non-empty 'name'"
    return None


def _function_call(value: Any) -> Problem:
    if value in ("auto", "none"):
        return None
    if isinstance(value, Mapping) and isinstance(value.get("name"), str) and value["name"]:
        return None
    return ValueError, f"must be 'auto', 'none' or {{'name': ...}}, got {value!r}"


def _strings(value: Any) -> Problem:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return None
    return TypeError, "must be a list of str"


def _json(value: Any) -> Problem:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return TypeError, f"cannot be sent as JSON ({exc})"
    return None


# Body parameters we know; anything else is passed through if JSON can carry it.
_PARAMS: Dict[str, Callable[[Any], Problem]] = {
    "temperature": _number(0, open_low=True),
    "top_p": _number(0, 1),
    "n": _positive_int,
    "max_tokens": _positive_int,
    "repetition_penalty": _number(0, open_low=True),
    "update_interval": _number(0),
    "profanity_check": _bool,
    "functions": _functions,
    "function_call": _function_call,
    "flags": _strings,
}
_RESERVED = {"messages": "pass messages as the first argument", "stream": "pass stream= as a keyword of chat()"}


def normalize_messages(messages: Messages) -> List[Dict[str, Any]]:
    """Validate ``messages`` and return a fresh list of plain dicts.

    A ``str`` becomes one user message. Raises ``TypeError``/``ValueError``
    naming the bad item.
    """
    messages = prompt_or_list(messages)
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    result = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(f"messages[{i}] must be a dict with 'role' and 'content', got {type(message).__name__}")
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(f"messages[{i}]['role'] must be one of {', '.join(ROLES)}, got {role!r}")
        content = message.get("content")
        if content is None and role == "assistant" and message.get("function_call"):
            content = ""  # a function-call turn carries no text
        if not isinstance(content, str):
            raise TypeError(f"messages[{i}]['content'] must be a str, got {type(content).__name__}")
        attachments = message.get("attachments")
        if attachments is not None and _strings(attachments):
            raise TypeError(f"messages[{i}]['attachments'] must be a list of file id str")
        clean = dict(message)
        clean["content"] = content
        result.append(clean)
    return result


def build_body(
    messages: List[Dict[str, Any]],
    model: str,
    stream: bool,
    update_interval: Optional[float],
    params: Mapping[str, Any],
) -> Dict[str, Any]:
    """The JSON body of ``/chat/completions``; ``None`` values are left out."""
    if not isinstance(model, str) or not model.strip():
        raise (TypeError if not isinstance(model, str) else ValueError)(f"model must be a non-empty str, got {model!r}")
    if not isinstance(stream, bool):
        raise TypeError(f"stream must be a bool, got {type(stream).__name__}")
    body: Dict[str, Any] = {"model": model, "messages": messages}
    if stream:
        body["stream"] = True
        if update_interval is not None:
            params = {**params, "update_interval": update_interval}
    for name, value in params.items():
        if value is None:
            continue
        if name in _RESERVED:
            raise TypeError(f"{name}: {_RESERVED[name]}")
        check_param(name, value)
        body[name] = value
    return body


class Prepared(NamedTuple):
    """A checked chat request: its contract, its JSON body and its checked ``response_format``."""

    api_version: str
    body: Dict[str, Any]
    output: Optional[OutputSpec]


def check_param(name: str, value: Any) -> None:
    """Raise the ``TypeError``/``ValueError`` for a known body setting's bad value (or one JSON cannot carry)."""
    problem = _PARAMS.get(name, _json)(value)
    if problem:
        raise problem[0](f"{name} {problem[1]}")


def prepare(
    messages: Messages,
    *,
    model: str,
    stream: bool,
    update_interval: Optional[float],
    params: Mapping[str, Any],
    api_version: Optional[str] = None,
) -> Prepared:
    """Choose the contract (see :mod:`.request_v2`), check everything, build the body; no I/O."""
    if choose_contract(api_version, params) == "v2":
        if not isinstance(model, str) or not model.strip():
            raise (TypeError if not isinstance(model, str) else ValueError)(f"model must be a non-empty str, got {model!r}")
        if not isinstance(stream, bool):
            raise TypeError(f"stream must be a bool, got {type(stream).__name__}")
        body, output = build_body_v2(messages, model, stream, update_interval, params, check_param)
        return Prepared("v2", body, output)
    v1_params, output = adapt_v1_params(dict(params))
    return Prepared("v1", prepare_chat(messages, model=model, stream=stream, update_interval=update_interval, params=v1_params), output)


def prepare_chat(
    messages: Messages,
    *,
    model: str,
    stream: bool,
    update_interval: Optional[float],
    params: Mapping[str, Any],
) -> Dict[str, Any]:
    """Validate everything and build the body; no I/O, so it can run on an event loop."""
    return build_body(normalize_messages(messages), model, stream, update_interval, params)
