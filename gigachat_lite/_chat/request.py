"""What a chat call sends: the contract chosen, the messages checked, the JSON body built. No I/O
(but an ``os.stat`` of a file attached by path, to check its size: see :mod:`.._attachments`).

Everything here runs before any request (and so can run on an event loop):
bad input is a ``TypeError`` or ``ValueError`` that names the bad item
(``messages[1].content[0]: unknown part 'img'``, ``temprature: unknown
keyword (did you mean temperature?)``).

**The settings** of a chat body are named and typed (:class:`ChatParams`,
:class:`V2Params`), declared once in :data:`PARAMS` with their check and their
place on each contract; anything else goes through ``extra_body=`` (merged at
the top of the body, never over a named setting) and per-call headers through
``extra_headers=`` and the ids (``session_id=``: ``X-Session-ID``, the key of
GigaChat's prompt cache; ``request_id=``, ``client_id=``, ``trace_id=``).

**The contract.** An explicit ``api_version`` (keyword, ``Session(api_version=)``
or ``GIGACHAT_API_VERSION``) wins. When none was given the call stays on v1,
the default, unless it uses a setting only v2 has (tools, ``model_options``,
``top_logprobs``, a regex ``response_format``, ...): then it goes to v2 by
itself. An explicit ``api_version="v1"`` with a v2-only setting is a
``ValueError`` naming both.

**v1** (``POST {base}/chat/completions``): ``content`` is a string and the
settings sit at the top of the body.

**v2** (``POST .../v2/chat/completions``), as the official SDK 0.2.4 builds it:
every ``content`` is a list of parts (``{"text"}``, ``{"files": [{"id"}]}``,
``{"function_call"}``, ``{"function_result"}``; a ``str`` prompt, plain
messages and v1 habits such as ``attachments``, the ``function`` role and
``functions_state_id`` are converted); ``temperature``, ``top_p``,
``max_tokens``, ``repetition_penalty``, ``update_interval``,
``parallel_tool_calls``, ``top_logprobs``, ``preset``,
``unnormalized_history``, ``response_format`` and the reasoning settings go
under ``model_options``; ``profanity_check`` becomes ``disable_filter``;
``storage=True`` becomes ``{}``; v1 ``functions``/``function_call`` become a
``functions`` tool and ``tool_config``; built-in tools are named.
"""

# No ``from __future__ import annotations`` here: ChatParams and the other keyword TypedDicts would then hold
# strings, and TypedDict compiles each one into a ForwardRef when the module is imported
# (~1 ms of ``import gigachat_lite``); built from the types themselves they cost a third of that.

import json
import math
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypedDict, Union

from .._attachments import Uploads, find_attachments
from ..config import FIELD_NAMES, Options, unknown_keyword
from ..structured import OutputSpec, output_spec

__all__ = [
    "Messages", "ChatParams", "V2Params", "CallOptions", "ChatBody", "ChatOptions", "ParseBody", "ParseOptions", "Prepared", "prepare", "chat_url_v2",
    "normalize_messages", "PARAMS", "CALL_OPTIONS", "BUILTIN_TOOLS", "call_headers", "check_param",
]

ROLES = ("system", "user", "assistant", "function")
ROLES_V2 = ("system", "user", "assistant", "tool", "function")
BUILTIN_TOOLS = ("web_search", "code_interpreter", "image_generate", "url_content_extraction", "model_3d_generate")
Messages = Union[str, Sequence[Mapping[str, Any]]]


class ChatParams(TypedDict, total=False):
    """Body settings of both contracts (v1 at the top of the body; v2 where the SDK puts them)."""

    temperature: Optional[float]
    top_p: Optional[float]
    n: Optional[int]  # v1, whole replies: every choice comes back (ChatReply.choices)
    max_tokens: Optional[int]
    repetition_penalty: Optional[float]
    profanity_check: Optional[bool]  # v2: sent as disable_filter = not profanity_check
    disable_filter: Optional[bool]  # v1: sent as profanity_check = not disable_filter
    functions: Optional[Sequence[Mapping[str, Any]]]
    function_call: Optional[Union[str, Mapping[str, Any]]]
    flags: Optional[Sequence[str]]
    reasoning_effort: Optional[str]  # any string GigaChat knows: "low", "medium", "high", "off", ...
    reasoning_max_tokens: Optional[int]  # the reasoning's token budget before the answer
    storage: Union[bool, Mapping[str, Any], None]
    thread_id: Optional[str]
    assistant_id: Optional[str]
    function_ranker: Optional[Mapping[str, Any]]  # v1 only


class V2Params(TypedDict, total=False):
    """Settings only v2 has: giving one chooses v2 (see the module docstring)."""

    tools: Optional[Sequence[Any]]  # built-in tool names or {"functions": ...}-style dicts
    tool_config: Optional[Union[str, Mapping[str, Any]]]
    model_options: Optional[Mapping[str, Any]]
    reasoning: Optional[Mapping[str, Any]]  # {"effort": str, "max_tokens": int}
    top_logprobs: Optional[int]
    preset: Optional[str]
    unnormalized_history: Optional[bool]
    parallel_tool_calls: Optional[bool]
    tools_state_id: Optional[str]
    user_info: Optional[Mapping[str, Any]]
    filter_config: Optional[Mapping[str, Any]]
    ranker_options: Optional[Mapping[str, Any]]


class CallOptions(TypedDict, total=False):
    """Per-call request settings that are not body settings."""

    extra_body: Optional[Mapping[str, Any]]  # more top-level body keys, JSON-able, never over a named setting
    extra_headers: Optional[Mapping[str, str]]
    session_id: Optional[str]  # X-Session-ID: GigaChat's key for prompt caching
    request_id: Optional[str]  # X-Request-ID
    client_id: Optional[str]  # X-Client-ID
    trace_id: Optional[str]  # X-Trace-ID


class ParseBody(ChatParams, V2Params, CallOptions, total=False):
    """What :meth:`Session.parse` takes besides the messages and ``response_format``."""


class ChatBody(ParseBody, total=False):
    """Every keyword :meth:`Session.chat` takes besides ``model``, ``stream``, ``update_interval`` and ``api_version``."""

    response_format: Any  # a JSON schema dict, {"type": "regex", ...}, an re.Pattern, a dataclass/TypedDict/pydantic class


class ParseOptions(Options, ParseBody, total=False):
    """What :func:`gigachat_lite.parse` takes besides the messages and ``response_format``: configuration and body settings."""


class ChatOptions(Options, ChatBody, total=False):
    """What :func:`gigachat_lite.chat` takes besides ``messages``: configuration and body settings."""


Problem = Optional[Tuple[type, str]]  # (exception class, text) or None
Check = Callable[[Any], Problem]


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past floats (10**400): no finite number GigaChat could read
        return False


def _number(low: float, high: float = math.inf, *, open_low: bool = False) -> Check:
    def check(value: Any) -> Problem:
        if not _is_number(value):
            return TypeError, f"must be a finite number, got {_shown(value)}"
        if value < low or value > high or (open_low and value == low):
            bounds = f"{'>' if open_low else '>='} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
            return ValueError, f"must be {bounds}, got {_shown(value)}"
        return None
    return check


def _int(low: int, high: Optional[int] = None) -> Check:
    def check(value: Any) -> Problem:
        if isinstance(value, bool) or not isinstance(value, int):
            return TypeError, f"must be an int, got {_shown(value)}"
        if value < low or (high is not None and value > high):
            return ValueError, f"must be >= {low}" + ("" if high is None else f" and <= {high}") + f", got {_shown(value)}"
        return None
    return check


def _bool(value: Any) -> Problem:
    return None if isinstance(value, bool) else (TypeError, f"must be a bool, got {_shown(value)}")


def _text(value: Any) -> Problem:
    if not isinstance(value, str):
        return TypeError, f"must be a str, got {type(value).__name__}"
    return None if value.strip() else (ValueError, "must be a non-empty str")


def _functions(value: Any) -> Problem:
    if not isinstance(value, (list, tuple)):
        return TypeError, f"must be a list of function descriptions, got {type(value).__name__}"
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            return ValueError, f"[{i}] must be a dict with a non-empty 'name'"
    return None


def _shown(value: Any) -> str:
    """``repr(value)`` cut to 60 letters; a value nested past repr's depth is named by its type."""
    try:
        text = repr(value)
    except RecursionError:
        return f"a {type(value).__name__} nested too deeply"
    return text if len(text) <= 60 else text[:57] + "..."


def _function_call(value: Any) -> Problem:
    if value in ("auto", "none"):
        return None
    if isinstance(value, Mapping) and isinstance(value.get("name"), str) and value["name"]:
        return None
    return ValueError, f"must be 'auto', 'none' or {{'name': ...}}, got {_shown(value)}"


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


def _object(value: Any) -> Problem:
    if not isinstance(value, Mapping):
        return TypeError, f"must be a dict, got {type(value).__name__}"
    return _json(value)


def _storage(value: Any) -> Problem:
    return None if isinstance(value, bool) else _object(value)


def _reasoning(value: Any) -> Problem:
    if not isinstance(value, Mapping) or not set(value) <= {"effort", "max_tokens"}:
        return TypeError, f"must be a dict like {{'effort': 'high', 'max_tokens': 256}}, got {_shown(value)}"
    if "effort" in value and _text(value["effort"]):
        return ValueError, "['effort'] must be a non-empty str"
    if "max_tokens" in value and _int(1)(value["max_tokens"]):
        return ValueError, "['max_tokens'] must be an int >= 1"
    return None


def _any(value: Any) -> Problem:
    return None  # response_format and tools: checked by the code that builds them


class _Param:
    """One body setting: its check, and where it goes on each contract.

    ``v1``/``v2``: ``"top"`` (that key at the top of the body), ``"options"``
    (v2's ``model_options``), ``"built"`` (built by its own code below), or
    ``None`` (not on that contract).
    """

    __slots__ = ("check", "v1", "v2")

    def __init__(self, check: Check, v1: Optional[str], v2: Optional[str]) -> None:
        self.check, self.v1, self.v2 = check, v1, v2


#: Every body setting, once.
PARAMS: Dict[str, _Param] = {
    "temperature": _Param(_number(0, open_low=True), "top", "options"),
    "top_p": _Param(_number(0, 1), "top", "options"),
    "n": _Param(_int(1), "top", None),
    "max_tokens": _Param(_int(1), "top", "options"),
    "repetition_penalty": _Param(_number(0, open_low=True), "top", "options"),
    "profanity_check": _Param(_bool, "top", "built"),
    "disable_filter": _Param(_bool, "built", "top"),
    "functions": _Param(_functions, "top", "built"),
    "function_call": _Param(_function_call, "top", "built"),
    "flags": _Param(_strings, "top", "top"),
    "response_format": _Param(_any, "built", "built"),
    "reasoning_effort": _Param(_text, "top", "built"),
    "reasoning_max_tokens": _Param(_int(1), "top", "built"),
    "storage": _Param(_storage, "built", "built"),
    "thread_id": _Param(_text, "built", "built"),
    "assistant_id": _Param(_text, "top", "top"),
    "function_ranker": _Param(_object, "top", None),
    "tools": _Param(_any, None, "built"),
    "tool_config": _Param(_any, None, "built"),
    "model_options": _Param(_object, None, "built"),
    "reasoning": _Param(_reasoning, "built", "built"),
    "top_logprobs": _Param(_int(1, 5), None, "options"),
    "preset": _Param(_text, None, "options"),
    "unnormalized_history": _Param(_bool, None, "options"),
    "parallel_tool_calls": _Param(_bool, None, "options"),
    "tools_state_id": _Param(_text, None, "top"),
    "user_info": _Param(_object, None, "top"),
    "filter_config": _Param(_object, None, "top"),
    "ranker_options": _Param(_object, None, "top"),
}
_V2_ONLY = tuple(name for name, param in PARAMS.items() if param.v1 is None and param.v2 is not None)
#: Per-call settings that are not body settings, with the header each id travels in.
CALL_OPTIONS = ("extra_body", "extra_headers", "session_id", "request_id", "client_id", "trace_id")
_ID_HEADERS = {"session_id": "X-Session-ID", "request_id": "X-Request-ID", "client_id": "X-Client-ID",
               "trace_id": "X-Trace-ID"}
# What the official SDK and OpenAI call some of ours, for the message that names ours.
_OTHER_NAMES = {"additional_fields": "extra_body", "custom_headers": "extra_headers", "reasoning_budget": "reasoning_max_tokens"}
_ARGUMENTS = ("messages", "model", "stream", "update_interval", "api_version", "session")
_VERSION_SUFFIX = re.compile(r"/v\d+$")


class Prepared:
    """A checked chat request: its contract, its JSON body, its checked ``response_format``, its own headers,
    and the files to upload before it is sent (their ids in the body are placeholders until then)."""

    __slots__ = ("api_version", "body", "output", "headers", "uploads")

    def __init__(self, api_version: str, body: Dict[str, Any], output: Optional[OutputSpec],
                 headers: Optional[Dict[str, str]] = None, uploads: Optional[Uploads] = None) -> None:
        self.api_version, self.body, self.output, self.headers, self.uploads = api_version, body, output, headers, uploads


def prepare(
    messages: Messages,
    *,
    model: str,
    stream: bool,
    update_interval: Optional[float],
    params: Mapping[str, Any],
    api_version: Optional[str] = None,
    defaults: Optional[Mapping[str, Any]] = None,
    model_given: bool = True,
) -> Prepared:
    """Choose the contract, check everything, build the body and the call's headers; no I/O but a file's ``os.stat``.

    ``defaults``: body settings the session's configuration gives (``flags``,
    ``profanity_check``), used where the call does not set them.
    ``model_given``: the call named its model; when it did not and an
    assistant or a stored thread answers, v2 sends no model (the
    assistant's or the thread's is used), as the official SDK does.

    Raises:
        TypeError, ValueError: naming the bad item (an unknown keyword with a suggestion).
    """
    given = {name: value for name, value in params.items() if value is not None}
    for name in given:
        if name in FIELD_NAMES and name not in PARAMS and name not in CALL_OPTIONS:
            raise TypeError(f"{name} is a configuration setting: give it to the Session (or to chat() without session=)")
        if name not in PARAMS and name not in CALL_OPTIONS:
            raise unknown_keyword(name, (*PARAMS, *CALL_OPTIONS, *_ARGUMENTS, *FIELD_NAMES), _OTHER_NAMES)
    for name, value in (defaults or {}).items():
        if value is not None:
            given.setdefault(name, value)
    if not isinstance(model, str) or not model.strip():
        raise (TypeError if not isinstance(model, str) else ValueError)(f"model must be a non-empty str, got {model!r}")
    if not isinstance(stream, bool):
        raise TypeError(f"stream must be a bool, got {type(stream).__name__}")
    for name, value in given.items():
        if name in PARAMS:
            check_param(name, value)
    if update_interval is not None:
        check_param("update_interval", update_interval)
    headers = call_headers(given)
    extra = given.pop("extra_body", None)
    for name in CALL_OPTIONS:
        given.pop(name, None)
    version = choose_contract(api_version, given)
    # Files in the messages (paths, bytes, data: URIs, image parts): checked against GigaChat's limits now
    # (an os.stat at most), read and uploaded when the call is sent (_attachments.py). A prompt string has none.
    uploads = None
    if not isinstance(messages, str):
        messages, uploads = find_attachments(messages, version)
    if version == "v2":
        body, output = _body_v2(messages, model, stream, update_interval, given)
        if not model_given and ("assistant_id" in given or "thread_id" in given or
                                isinstance(given.get("storage"), Mapping) and "thread_id" in given["storage"]):
            del body["model"]
    else:
        body, output = _body_v1(messages, model, stream, update_interval, given)
    if extra is not None:
        _merge_extra(body, extra)
    return Prepared(version, body, output, headers, uploads)


def check_param(name: str, value: Any) -> None:
    """Raise the ``TypeError``/``ValueError`` for a body setting's bad value (an unknown one: one JSON cannot carry)."""
    problem = PARAMS[name].check(value) if name in PARAMS else _number(0)(value) if name == "update_interval" else _json(value)
    if problem:
        raise problem[0](f"{name} {problem[1]}")


def call_headers(options: Mapping[str, Any]) -> Optional[Dict[str, str]]:
    """The headers a call's ids and ``extra_headers`` give (``None`` when none).

    Raises:
        TypeError, ValueError: a header that is not a str or would break the request.
    """
    headers: Dict[str, str] = {}
    for name, header in _ID_HEADERS.items():
        value = options.get(name)
        if value is not None:
            headers[header] = _header_value(value, name)
    extra = options.get("extra_headers")
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise TypeError(f"extra_headers must be a dict of str, got {type(extra).__name__}")
        for key, value in extra.items():
            if not isinstance(key, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", key):
                raise ValueError(f"extra_headers: {key!r} is not a header name")
            headers[key] = _header_value(value, f"extra_headers[{key!r}]")
    return headers or None


def _header_value(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a str, got {type(value).__name__}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or not value.isascii():
        raise ValueError(f"{where} must be printable ASCII (a header carries it)")
    return value


def _merge_extra(body: Dict[str, Any], extra: Any) -> None:
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra_body must be a dict, got {type(extra).__name__}")
    for key, value in extra.items():
        if not isinstance(key, str):
            raise TypeError(f"extra_body keys must be str, got {key!r}")
        if key in body or key in ("model", "messages", "stream"):
            raise TypeError(f"extra_body[{key!r}] would replace the body's {key!r}: pass it as its own keyword")
        problem = _json(value)
        if problem:
            raise problem[0](f"extra_body[{key!r}] {problem[1]}")
        body[key] = value


def choose_contract(api_version: Optional[str], params: Mapping[str, Any]) -> str:
    """``"v1"`` or ``"v2"`` for a call with ``params`` (see the module docstring).

    Raises:
        ValueError: ``api_version`` is "v1" and a v2-only setting is used.
    """
    if api_version not in (None, "v1", "v2"):
        raise ValueError(f"api_version must be 'v1' or 'v2', got {api_version!r}")
    needs = [name for name in _V2_ONLY if name in params]
    response_format = params.get("response_format")
    if isinstance(response_format, re.Pattern) or (isinstance(response_format, Mapping) and response_format.get("type") == "regex"):
        needs.append("response_format (regex)")
    if api_version == "v1" and needs:
        raise ValueError(f"{needs[0]} needs the v2 contract, but api_version is 'v1' (pass api_version='v2' or leave it unset)")
    if api_version is not None:
        return api_version
    return "v2" if needs else "v1"


def _both(given: Mapping[str, Any], one: str, other: str) -> None:
    if one in given and other in given:
        raise TypeError(f"pass {one} or {other}, not both (one is the other's opposite)")


def _reasoning_of(given: Mapping[str, Any]) -> Dict[str, Any]:
    """``{"effort", "max_tokens"}`` from ``reasoning=`` and/or ``reasoning_effort=``/``reasoning_max_tokens=``."""
    reasoning = dict(given.get("reasoning") or {})
    for name, key in (("reasoning_effort", "effort"), ("reasoning_max_tokens", "max_tokens")):
        if name in given:
            if key in reasoning:
                raise TypeError(f"{name} given twice: as {name}= and in reasoning['{key}']")
            reasoning[key] = given[name]
    return reasoning


def _body_v1(
    messages: Messages, model: str, stream: bool, update_interval: Optional[float], given: Mapping[str, Any]
) -> Tuple[Dict[str, Any], Optional[OutputSpec]]:
    if stream and given.get("n", 1) > 1:
        raise ValueError("n > 1 gives several whole answers: pass stream=False (a stream carries one)")
    body: Dict[str, Any] = {"model": model, "messages": normalize_messages(messages)}
    if stream:
        body["stream"] = True
        if update_interval is not None:
            body["update_interval"] = update_interval
    for name, value in given.items():
        if PARAMS[name].v1 == "top":
            body[name] = value
        elif PARAMS[name].v1 is None:
            raise ValueError(f"{name} is a v2 setting")  # choose_contract has refused it already
    _both(given, "profanity_check", "disable_filter")
    if "disable_filter" in given:
        body["profanity_check"] = not given["disable_filter"]
    spec = None
    if "response_format" in given:
        spec = output_spec(given["response_format"])
        body["response_format"] = spec.wire
    if "reasoning" in given:
        reasoning = _reasoning_of(given)
        if "effort" in reasoning:
            body["reasoning_effort"] = reasoning["effort"]
        if "max_tokens" in reasoning:
            body["reasoning_max_tokens"] = reasoning["max_tokens"]
    storage = _storage_of(given)
    if storage is not None:
        body["storage"] = storage if storage else {"is_stateful": True}
    return body, spec


def _storage_of(given: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The storage object (``{}`` for ``storage=True``), with ``thread_id`` in it; ``None`` when not stored."""
    storage = given.get("storage")
    if storage is False and "thread_id" in given:
        raise ValueError("thread_id needs storage: leave storage=False out")
    result = dict(storage) if isinstance(storage, Mapping) else ({} if storage is True or "thread_id" in given else None)
    if result is not None and "thread_id" in given:
        if result.get("thread_id") not in (None, given["thread_id"]):
            raise TypeError("thread_id given twice: as thread_id= and in storage['thread_id']")
        result["thread_id"] = given["thread_id"]
    return result


def _body_v2(
    messages: Messages, model: str, stream: bool, update_interval: Optional[float], given: Mapping[str, Any]
) -> Tuple[Dict[str, Any], Optional[OutputSpec]]:
    if "n" in given:
        raise ValueError("n: v2 returns one answer per request (leave n out)")
    if "function_ranker" in given:
        raise ValueError("function_ranker is a v1 setting (v2 ranks with ranker_options)")
    options: Dict[str, Any] = dict(given.get("model_options") or {})
    hoisted = dict(given)
    if stream and update_interval is not None:
        hoisted["update_interval"] = update_interval
    for name, value in hoisted.items():
        if name == "update_interval" or PARAMS[name].v2 == "options":
            if name in options:
                raise TypeError(f"{name} given twice: as {name}= and in model_options")
            options[name] = value
    reasoning = _reasoning_of(given)
    if reasoning:
        if "reasoning" in options:
            raise TypeError("reasoning given twice: as a keyword and in model_options")
        options["reasoning"] = reasoning
    spec = None
    if "response_format" in given:
        if "response_format" in options:
            raise TypeError("response_format given twice: as response_format= and in model_options")
        spec = output_spec(given["response_format"])
        options["response_format"] = spec.wire
    body: Dict[str, Any] = {"model": model, "messages": normalize_messages_v2(messages)}
    if stream:
        body["stream"] = True
    if options:
        body["model_options"] = options
    tools = _tools(given.get("tools"), given.get("functions"))
    if tools:
        body["tools"] = tools
    tool_config = given.get("tool_config")
    function_call = given.get("function_call")
    if function_call is not None:
        if tool_config is not None:
            raise TypeError("pass tool_config or function_call, not both")
        tool_config = function_call if isinstance(function_call, str) else function_call["name"]
    if tool_config is not None:
        body["tool_config"] = _tool_config(tool_config, tools)
    _both(given, "profanity_check", "disable_filter")
    if "profanity_check" in given:
        body["disable_filter"] = not given["profanity_check"]
    for name, value in given.items():
        if PARAMS[name].v2 == "top":
            body[name] = value
    storage = _storage_of(given)
    if storage is not None:
        body["storage"] = storage
    return body, spec


def chat_url_v2(base_url: str) -> str:
    """The v2 chat URL: ``.../api/v1`` -> ``.../api/v2/chat/completions`` (as the official SDK derives it).

    A ``base_url`` without a ``/vN`` suffix gets ``/chat/completions`` appended.
    """
    match = _VERSION_SUFFIX.search(base_url)
    if match is None:
        return base_url + "/chat/completions"
    return base_url[: match.start()] + "/v2/chat/completions"


# -- v1 messages ---------------------------------------------------------------------------

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


# -- v2 tools ------------------------------------------------------------------------------

def _tools(tools: Any, functions: Any) -> List[Dict[str, Any]]:
    if tools is None:
        tools = []
    elif isinstance(tools, (str, Mapping)):
        tools = [tools]
    elif not isinstance(tools, (list, tuple)):
        raise TypeError(f"tools must be a list of tool names or dicts, got {type(tools).__name__}")
    result: List[Dict[str, Any]] = []
    specifications: List[Dict[str, Any]] = [dict(f) for f in functions or []]
    for i, tool in enumerate(tools):
        if isinstance(tool, str):
            if tool not in BUILTIN_TOOLS:
                raise ValueError(f"tools[{i}]: unknown built-in tool {tool!r} (known: {', '.join(BUILTIN_TOOLS)})")
            result.append({tool: {}})
        elif isinstance(tool, Mapping) and len(tool) == 1 and next(iter(tool)) in BUILTIN_TOOLS:
            name = next(iter(tool))
            if not isinstance(tool[name], Mapping):
                raise TypeError(f"tools[{i}]['{name}'] must be a dict of its settings")
            result.append({name: dict(tool[name])})
        elif isinstance(tool, Mapping) and len(tool) == 1 and "functions" in tool:
            specs = tool["functions"].get("specifications") if isinstance(tool["functions"], Mapping) else None
            if not isinstance(specs, (list, tuple)) or not all(_is_function(s) for s in specs):
                raise ValueError(f"tools[{i}]: 'functions' needs 'specifications', a list of dicts with a 'name'")
            specifications.extend(dict(s) for s in specs)
        elif _is_function(tool):  # a v1-style function description: one more specification
            specifications.append(dict(tool))
        else:
            raise ValueError(f"tools[{i}]: expected a built-in tool name ({', '.join(BUILTIN_TOOLS)}), "
                             f"{{name: settings}}, {{'functions': {{'specifications': [...]}}}} or a function description")
    if specifications:
        result.append({"functions": {"specifications": specifications}})
    return result


def _is_function(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("name"), str) and bool(value["name"])


def _tool_config(value: Any, tools: List[Dict[str, Any]]) -> Dict[str, Any]:
    functions = {s["name"] for t in tools for s in t.get("functions", {}).get("specifications", [])}
    if isinstance(value, str):
        if value in ("auto", "none"):
            return {"mode": value}
        if value in BUILTIN_TOOLS:
            return {"mode": "forced", "tool_name": value}
        if value in functions:
            return {"mode": "forced", "function_name": value}
        raise ValueError(f"tool_config: {_shown(value)} is not 'auto', 'none', a built-in tool or a function in tools")
    if not isinstance(value, Mapping) or value.get("mode") not in ("auto", "forced", "none", "any"):
        raise ValueError("tool_config must be 'auto', a tool or function name, or {'mode': 'auto'|'forced'|'any'|'none', ...}")
    if value["mode"] == "forced" and not (value.get("tool_name") or value.get("function_name")):
        raise ValueError("tool_config: mode 'forced' needs 'tool_name' (built-in) or 'function_name'")
    names = value.get("functions_names_any")
    if names is not None:
        if value["mode"] != "any":
            raise ValueError("tool_config: functions_names_any goes with mode 'any'")
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
            raise TypeError("tool_config['functions_names_any'] must be a non-empty list of function names")
        unknown = [n for n in names if n not in functions]
        if unknown:
            raise ValueError(f"tool_config['functions_names_any'] names {unknown[0]!r}, which is not a function in tools")
    if value["mode"] == "any" and not functions:
        raise ValueError("tool_config: mode 'any' needs functions (tools=[...] or functions=[...])")
    return dict(value)


# -- v2 messages ---------------------------------------------------------------------------

PART_KINDS = ("text", "files", "function_call", "function_result", "inline_data", "tool_execution", "reasoning")
_STATE_KEYS = ("tools_state_id", "tool_state_id", "functions_state_id")  # the reply says tool_state_id


def prompt_or_list(messages: Any) -> Union[str, Sequence[Any]]:
    """``messages`` checked at the top (both contracts): a non-empty prompt, or a non-empty list of messages."""
    if isinstance(messages, str):
        if not messages.strip():
            raise ValueError("messages: the prompt is an empty str")
        return messages
    if isinstance(messages, Mapping):
        raise TypeError("messages must be a str or a list of message dicts; got one dict (wrap it in a list)")
    if not isinstance(messages, (list, tuple)):
        raise TypeError(f"messages must be a str or a list of message dicts, got {type(messages).__name__}")
    if not messages:
        raise ValueError("messages is empty")
    return messages


def normalize_messages_v2(messages: Union[str, Sequence[Mapping[str, Any]]]) -> List[Dict[str, Any]]:
    """Validate ``messages`` and return fresh v2 message dicts (content as parts).

    Raises:
        TypeError, ValueError: naming the bad item, e.g. ``messages[0].content[2]``.
    """
    messages = prompt_or_list(messages)
    if isinstance(messages, str):
        return [{"role": "user", "content": [{"text": messages}]}]
    result = [_message(message, f"messages[{i}]") for i, message in enumerate(messages)]
    state = None
    for message in result:  # a v1-style history: the answer to a call carries the call's state too
        if message["role"] == "assistant":
            state = message.get("tools_state_id")
        elif message["role"] == "tool" and state and "tools_state_id" not in message:
            message["tools_state_id"] = state
    return result


def _message(message: Any, where: str) -> Dict[str, Any]:
    if not isinstance(message, Mapping):
        raise TypeError(f"{where} must be a dict with 'role' and 'content', got {type(message).__name__}")
    role = message.get("role")
    if role not in ROLES_V2:
        raise ValueError(f"{where}['role'] must be one of {', '.join(ROLES_V2)}, got {role!r}")
    clean: Dict[str, Any] = {k: v for k, v in message.items() if k not in _STATE_KEYS and k != "attachments"}
    content = message.get("content")
    if isinstance(content, str):
        parts: List[Dict[str, Any]] = [{"text": content}] if content or role != "assistant" else []
        if role == "function":  # a v1 function answer: content is the JSON text of the result
            clean.pop("name", None)
            role, parts = "tool", [{"function_result": {"name": _name(message.get("name"), f"{where}['name']"),
                                                        "result": _json_or_text(content)}}]
    elif content is None and role == "assistant":
        parts = []
    elif isinstance(content, (list, tuple)):
        parts = [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    else:
        raise TypeError(f"{where}['content'] must be a str or a list of parts, got {type(content).__name__}")
    call = clean.pop("function_call", None)
    if call is not None and role == "assistant":  # a v1 assistant turn that called a function
        parts.append(_part({"function_call": call}, f"{where}['function_call']"))
    attachments = message.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, (list, tuple)) or not all(isinstance(a, str) and a for a in attachments):
            raise TypeError(f"{where}['attachments'] must be a list of file id str")
        if attachments:  # an empty list is no files: no empty part on the wire
            parts.append({"files": [{"id": file_id} for file_id in attachments]})
    if not parts:
        raise ValueError(f"{where}: the message has no content")
    clean["role"] = role
    clean["content"] = parts
    state = next((message[k] for k in _STATE_KEYS if message.get(k)), None)
    if state is not None:
        if not isinstance(state, str):
            raise TypeError(f"{where}['tools_state_id'] must be a str, got {type(state).__name__}")
        clean["tools_state_id"] = state
    return clean


def _part(part: Any, where: str) -> Dict[str, Any]:
    if isinstance(part, str):
        return {"text": part}
    if not isinstance(part, Mapping):
        raise TypeError(f"{where}: a part must be a dict like {{'text': ...}} or a str, got {type(part).__name__}")
    unknown = [key for key in part if key not in PART_KINDS]
    if unknown:
        raise ValueError(f"{where}: unknown part {unknown[0]!r} (known: {', '.join(PART_KINDS[:4])})")
    if not part:
        raise ValueError(f"{where}: an empty part")
    if "text" in part and not isinstance(part["text"], str):
        raise TypeError(f"{where}['text'] must be a str, got {type(part['text']).__name__}")
    if "files" in part:
        files = part["files"]
        if not isinstance(files, (list, tuple)) or not files:
            raise TypeError(f"{where}['files'] must be a non-empty list of {{'id': str}}")
        for k, item in enumerate(files):
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
                raise TypeError(f"{where}['files'][{k}] must be a dict with a non-empty 'id' str")
    if "function_call" in part:
        call = part["function_call"]
        if not isinstance(call, Mapping):
            raise TypeError(f"{where}['function_call'] must be a dict with 'name' and 'arguments'")
        _name(call.get("name"), f"{where}['function_call']['name']")
        arguments = call.get("arguments", {})
        if isinstance(arguments, str):  # v1 habits and OpenAI-style text: v2 wants the object
            arguments = _json_or_text(arguments)
        _check_json(arguments, f"{where}['function_call']['arguments']")
        return {**part, "function_call": {**call, "arguments": arguments}}
    if "function_result" in part:
        result = part["function_result"]
        if not isinstance(result, Mapping) or "result" not in result:
            raise TypeError(f"{where}['function_result'] must be a dict with 'name' and 'result'")
        _name(result.get("name"), f"{where}['function_result']['name']")
        _check_json(result["result"], f"{where}['function_result']['result']")
    return dict(part)


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty str, got {_shown(value)}")
    return value


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _check_json(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} cannot be sent as JSON ({exc})") from None
