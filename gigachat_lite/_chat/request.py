"""What a chat call sends: the contract chosen, the messages checked, the JSON body built. No I/O.

Everything here runs before any request (and so can run on an event loop):
bad input is a ``TypeError`` or ``ValueError`` that names the bad item
(``messages[1].content[0]: unknown part 'img'``).

**The contract.** An explicit ``api_version`` (keyword, ``Session(api_version=)``
or ``GIGACHAT_API_VERSION``) wins. When none was given the call stays on v1,
the default, unless it uses something only v2 has (:data:`V2_ONLY`, or a
regex ``response_format``): then it goes to v2 by itself. An explicit
``api_version="v1"`` with a v2-only feature is a ``ValueError`` naming both.
``response_format`` (JSON schema) and ``reasoning_effort`` exist on both
contracts (real v1 traffic carries them), so they do not switch.

**v1** (``POST {base}/chat/completions``): ``content`` is a string and the
settings sit at the top of the body.

**v2** (``POST .../api/v2/chat/completions``): every ``content`` is a list of
parts, each a one-key object: ``{"text": str}``, ``{"files": [{"id": str}]}``,
``{"function_call": {"name", "arguments"}}``, ``{"function_result": {"name",
"result"}}``. A plain ``str`` prompt, ``{"role", "content": str}`` dicts and
v1 habits (``attachments``, the ``function`` role, ``functions_state_id``)
are converted; parts lists pass through once checked. The v1-style settings
(``temperature``, ``max_tokens``, ``top_p``, ``repetition_penalty``,
``update_interval``, ...) go under ``model_options``, ``reasoning_effort`` as
``model_options.reasoning.effort``, ``response_format`` as
``model_options.response_format``, v1 ``functions``/``function_call`` as a
``functions`` tool and ``tool_config``, built-in tools by name.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, TypedDict, Union

from ..config import Options
from ..structured import OutputSpec, output_spec

__all__ = [
    "Messages", "ChatParams", "V2Params", "ChatBody", "ChatOptions", "Prepared", "prepare", "chat_url_v2",
    "normalize_messages", "V2_ONLY", "BUILTIN_TOOLS",
]

ROLES = ("system", "user", "assistant", "function")
ROLES_V2 = ("system", "user", "assistant", "tool", "function")
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
    """Settings for structured output, reasoning and tools; the v2-only ones choose v2 (see the module docstring)."""

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
    """Choose the contract (see the module docstring), check everything, build the body; no I/O."""
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


# -- v2 ----------------------------------------------------------------------------------

V2_ONLY = ("tools", "tool_config", "model_options", "storage", "thread_id", "filter_config", "user_info",
           "ranker_options", "assistant_id", "reasoning")
BUILTIN_TOOLS = ("web_search", "code_interpreter", "image_generate", "url_content_extraction", "model_3d_generate")
REASONING_EFFORTS = ("low", "medium", "high")
MODEL_OPTIONS = ("temperature", "top_p", "max_tokens", "repetition_penalty", "update_interval", "top_logprobs",
                 "preset", "unnormalized_history")
_VERSION_SUFFIX = re.compile(r"/v\d+$")

Check = Callable[[str, Any], None]  # check_param: raises naming the setting


def chat_url_v2(base_url: str) -> str:
    """The v2 chat URL: ``.../api/v1`` -> ``.../api/v2/chat/completions`` (as the official SDK derives it).

    A ``base_url`` without a ``/vN`` suffix gets ``/chat/completions`` appended.
    """
    match = _VERSION_SUFFIX.search(base_url)
    if match is None:
        return base_url + "/chat/completions"
    return base_url[: match.start()] + "/v2/chat/completions"


def v2_features(params: Mapping[str, Any]) -> List[str]:
    """The settings in ``params`` that only v2 understands."""
    found = [name for name in V2_ONLY if params.get(name) is not None]
    response_format = params.get("response_format")
    if isinstance(response_format, re.Pattern) or (
        isinstance(response_format, Mapping) and response_format.get("type") == "regex"
    ):
        found.append("response_format (regex)")
    return found


def choose_contract(api_version: Optional[str], params: Mapping[str, Any]) -> str:
    """``"v1"`` or ``"v2"`` for a call with ``params`` (see the module docstring).

    Raises:
        ValueError: ``api_version`` is "v1" and a v2-only feature is used.
    """
    if api_version not in (None, "v1", "v2"):
        raise ValueError(f"api_version must be 'v1' or 'v2', got {api_version!r}")
    needs = v2_features(params)
    if api_version == "v1" and needs:
        raise ValueError(f"{needs[0]} needs the v2 contract, but api_version is 'v1' (pass api_version='v2' or leave it unset)")
    if api_version is not None:
        return api_version
    return "v2" if needs else "v1"


def _effort(value: Any) -> str:
    if value not in REASONING_EFFORTS:
        raise ValueError(f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}, got {value!r}")
    return str(value)


def adapt_v1_params(params: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[OutputSpec]]:
    """v1 body settings with ``response_format`` and ``reasoning_effort`` checked (top-level on v1)."""
    spec = None
    if params.get("response_format") is not None:
        spec = output_spec(params["response_format"])
        params = {**params, "response_format": spec.wire}
    if params.get("reasoning_effort") is not None:
        _effort(params["reasoning_effort"])
    return params, spec


def build_body_v2(
    messages: Any,
    model: str,
    stream: bool,
    update_interval: Optional[float],
    params: Mapping[str, Any],
    check: Check,
) -> Tuple[Dict[str, Any], Optional[OutputSpec]]:
    """The JSON body of ``POST /api/v2/chat/completions`` and the checked ``response_format``.

    Raises:
        TypeError, ValueError: naming the bad item, before any request.
    """
    rest = {name: value for name, value in params.items() if value is not None}
    if "n" in rest:
        raise ValueError("n: v2 returns one answer per request (leave n out)")
    options = rest.pop("model_options", None) or {}
    if not isinstance(options, Mapping):
        raise TypeError(f"model_options must be a dict, got {type(options).__name__}")
    options = dict(options)
    if stream and update_interval is not None:
        rest["update_interval"] = update_interval
    for name in MODEL_OPTIONS:
        if name in rest:
            check(name, rest[name])
            options[name] = rest.pop(name)
    if "reasoning_effort" in rest:
        options["reasoning"] = {"effort": _effort(rest.pop("reasoning_effort"))}
    if "reasoning" in rest:
        reasoning = rest.pop("reasoning")
        if not isinstance(reasoning, Mapping):
            raise TypeError("reasoning must be a dict like {'effort': 'high'} (or pass reasoning_effort=)")
        options["reasoning"] = dict(reasoning)
    spec = None
    if "response_format" in rest:
        spec = output_spec(rest.pop("response_format"))
        options["response_format"] = spec.wire
    functions = rest.pop("functions", None)
    if functions is not None:
        check("functions", functions)
    tools = _tools(rest.pop("tools", None), functions)
    function_call = rest.pop("function_call", None)
    if function_call is not None:
        check("function_call", function_call)
        rest.setdefault("tool_config", function_call if isinstance(function_call, str) else function_call["name"])
    if "thread_id" in rest:
        storage = rest.get("storage")
        rest["storage"] = {**(storage if isinstance(storage, Mapping) else {}), "thread_id": rest.pop("thread_id")}
    body: Dict[str, Any] = {"model": model, "messages": normalize_messages_v2(messages)}
    if stream:
        body["stream"] = True
    if options:
        body["model_options"] = options
    if tools:
        body["tools"] = tools
    if "tool_config" in rest:
        body["tool_config"] = _tool_config(rest.pop("tool_config"), tools)
    for name, value in rest.items():
        if name in ("messages", "stream"):
            raise TypeError(f"{name}: pass it as chat()'s own argument")
        check(name, value)
        body[name] = value
    return body, spec


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
        raise ValueError(f"tool_config: {value!r} is not 'auto', 'none', a built-in tool or a function in tools")
    if not isinstance(value, Mapping) or value.get("mode") not in ("auto", "forced", "none"):
        raise ValueError("tool_config must be 'auto', a tool or function name, or {'mode': 'auto'|'forced', ...}")
    if value["mode"] == "forced" and not (value.get("tool_name") or value.get("function_name")):
        raise ValueError("tool_config: mode 'forced' needs 'tool_name' (built-in) or 'function_name'")
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
        raise ValueError(f"{where} must be a non-empty str, got {value!r}")
    return value


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check_json(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} cannot be sent as JSON ({exc})") from None
