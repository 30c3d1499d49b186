"""Which chat contract a call uses, and the v2 request body.

The contract: an explicit ``api_version`` (keyword, ``Session(api_version=)``
or ``GIGACHAT_API_VERSION``) wins. When none was given the call stays on v1,
the default, unless it uses something only v2 has (:data:`V2_ONLY`, or a
regex ``response_format``): then it goes to v2 by itself. An explicit
``api_version="v1"`` with a v2-only feature is a ``ValueError`` naming both.
``response_format`` (JSON schema) and ``reasoning_effort`` exist on both
contracts (real v1 traffic carries them), so they do not switch.

The v2 body: messages as parts (:mod:`messages_v2`), the v1-style settings
(``temperature``, ``max_tokens``, ``top_p``, ``repetition_penalty``,
``update_interval``, ...) under ``model_options``, ``reasoning_effort`` as
``model_options.reasoning.effort``, ``response_format`` as
``model_options.response_format``, v1 ``functions``/``function_call`` as a
``functions`` tool and ``tool_config``, built-in tools by name.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .messages_v2 import normalize_messages_v2
from .structured import OutputSpec, output_spec

__all__ = [
    "choose_contract", "build_body_v2", "adapt_v1_params", "chat_url_v2", "V2_ONLY", "BUILTIN_TOOLS",
    "REASONING_EFFORTS",
]

V2_ONLY = ("tools", "tool_config", "model_options", "storage", "thread_id", "filter_config", "user_info",
           "ranker_options", "assistant_id", "reasoning")
BUILTIN_TOOLS = ("web_search", "code_interpreter", "image_generate", "url_content_extraction", "model_3d_generate")
REASONING_EFFORTS = ("low", "medium", "high")
MODEL_OPTIONS = ("temperature", "top_p", "max_tokens", "repetition_penalty", "update_interval", "top_logprobs",
                 "preset", "unnormalized_history")
_VERSION_SUFFIX = re.compile(r"/v\d+$")

Check = Callable[[str, Any], None]  # chat.py's check of a v1 setting: raises naming it


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
