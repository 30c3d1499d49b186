"""v2 request checks: each returns why the request is invalid (naming the item), or ``None``.

The real API refuses such requests with 422 ``{"status": 422, "message": ...}``; the
emulator's messages name the offending item so a test can see which one it was.

The body is the one the official SDK 0.2.4a1 builds (``reference/API_FACTS.md`` 7.1):
generation settings live in ``model_options`` (``temperature``, ``top_p``,
``max_tokens``, ``repetition_penalty``, ``update_interval``, ``reasoning``
``{effort: any string, max_tokens}``, ``response_format``, ``parallel_tool_calls``,
``top_logprobs`` 1-5, ``preset``, ``unnormalized_history``); ``disable_filter``,
``flags``, ``user_info``, ``storage`` (an object), ``assistant_id`` and
``tools_state_id`` sit at the top level; unknown top-level fields pass (the SDK sends
``filter_config``, ``ranker_options`` and ``additional_fields`` that way). Stricter
than the service, so a client's mistake shows instead of being ignored: a
``model_options`` setting at the top level, v1's ``profanity_check``,
``reasoning_effort``, ``reasoning_max_tokens``, ``functions`` and ``function_call``
are refused, naming where the value belongs.
"""

import json
import re
from typing import Any, Callable, Dict, List, Optional

from .chat_context import storage_problem
from .tool_calls import results_problem

ROLES = ("system", "user", "assistant", "tool")
PART_KINDS = ("text", "files", "function_call", "function_result", "inline_data", "tool_execution", "logprobs")
BUILTIN_TOOLS = ("web_search", "code_interpreter", "image_generate", "url_content_extraction", "model_3d_generate")
TOOL_MODES = ("auto", "forced", "none", "any")
FORMAT_TYPES = ("text", "json_schema", "regex")
MAX_TOP_LOGPROBS = 5
_NUMBERS = ("temperature", "top_p", "repetition_penalty", "update_interval")
#: Settings the SDK moves from the top level into ``model_options``.
OPTION_NAMES = _NUMBERS + ("max_tokens", "reasoning", "response_format", "parallel_tool_calls", "preset",
                           "unnormalized_history", "top_logprobs")
#: v1 fields with their v2 place.
V1_NAMES = {
    "profanity_check": "disable_filter (= not profanity_check)",
    "reasoning_effort": "model_options.reasoning.effort",
    "reasoning_max_tokens": "model_options.reasoning.max_tokens",
    "functions": 'tools=[{"functions": {"specifications": [...]}}]',
    "function_call": "tool_config",
}


def _part(where: str, part: Any) -> Optional[str]:
    if not isinstance(part, dict) or not part:
        return "%s must be a non-empty object" % where
    unknown = [key for key in part if key not in PART_KINDS]
    if unknown:
        return "%s: unknown part %r (known: %s)" % (where, unknown[0], ", ".join(PART_KINDS))
    if "text" in part and not isinstance(part["text"], str):
        return "%s.text must be a string" % where
    files = part.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("id"), str) for f in files):
        return "%s.files must be a list of objects with a string id" % where
    for kind in ("function_call", "function_result"):
        if kind in part and not (isinstance(part[kind], dict) and isinstance(part[kind].get("name"), str)):
            return "%s.%s must be an object with a string name" % (where, kind)
        if kind in part and part[kind].get("id") is not None and not isinstance(part[kind]["id"], str):
            return "%s.%s.id must be a string" % (where, kind)
    if "function_result" in part and "result" not in part["function_result"]:
        return "%s.function_result needs a result" % where
    return None


def messages_problem(messages: Any) -> Optional[str]:
    """Why ``messages`` is invalid: roles, content as a list of known parts."""
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for number, message in enumerate(messages):
        where = "messages[%d]" % number
        if not isinstance(message, dict):
            return "%s must be an object" % where
        if message.get("role") not in ROLES:
            return "%s.role must be one of %s" % (where, ", ".join(ROLES))
        content = message.get("content")
        if not isinstance(content, list):
            return "%s.content must be a list of parts, e.g. [{\"text\": \"...\"}]" % where
        for index, part in enumerate(content):
            problem = _part("%s.content[%d]" % (where, index), part)
            if problem:
                return problem
        for name in ("tools_state_id", "tool_state_id", "functions_state_id"):
            if message.get(name) is not None and not isinstance(message[name], str):
                return "%s.%s must be a string" % (where, name)
    return None


def schema_of(response_format: Dict[str, Any]) -> Any:
    """The ``schema`` of a response format; the SDK may send it as JSON text."""
    schema = response_format.get("schema")
    if isinstance(schema, str):
        try:
            return json.loads(schema)
        except ValueError:
            return None
    return schema


def _response_format(value: Any) -> Optional[str]:
    where = "model_options.response_format"
    if not isinstance(value, dict) or value.get("type") not in FORMAT_TYPES:
        return "%s.type must be one of %s" % (where, ", ".join(FORMAT_TYPES))
    if value["type"] == "json_schema" and not isinstance(schema_of(value), dict):
        return "%s.schema must be a JSON schema object" % where
    if value["type"] == "regex":
        pattern = value.get("regex")
        try:
            re.compile(pattern if isinstance(pattern, str) else "(")
        except re.error:
            return "%s.regex must be a valid regular expression" % where
    return None


def _reasoning(reasoning: Any) -> Optional[str]:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        return "model_options.reasoning must be an object {effort, max_tokens}"
    effort = reasoning.get("effort")
    if effort is not None and not (isinstance(effort, str) and effort):
        return "model_options.reasoning.effort must be a non-empty string, e.g. low, medium, high or off"
    budget = reasoning.get("max_tokens")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        return "model_options.reasoning.max_tokens must be a positive integer"
    return None


def options_problem(options: Any) -> Optional[str]:
    """Why ``model_options`` is invalid."""
    if options is None:
        return None
    if not isinstance(options, dict):
        return "model_options must be an object"
    for name in _NUMBERS:
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return "model_options.%s must be a number" % name
    limit = options.get("max_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        return "model_options.max_tokens must be a positive integer"
    problem = _reasoning(options.get("reasoning"))
    if problem:
        return problem
    for name, kind in (("parallel_tool_calls", bool), ("unnormalized_history", bool), ("preset", str)):
        if options.get(name) is not None and not isinstance(options[name], kind):
            return "model_options.%s must be a %s" % (name, "boolean" if kind is bool else "string")
    top = options.get("top_logprobs")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP_LOGPROBS):
        return "model_options.top_logprobs must be an integer from 1 to %d" % MAX_TOP_LOGPROBS
    if options.get("response_format") is not None:
        return _response_format(options["response_format"])
    return None


def specifications(tools: Any) -> List[Dict[str, Any]]:
    """The function specifications of every ``functions`` tool (tools already checked)."""
    found: List[Dict[str, Any]] = []
    for tool in tools or []:
        found += (tool.get("functions") or {}).get("specifications") or []
    return found


def builtin_names(tools: Any) -> List[str]:
    """The built-in tools asked for, in request order (tools already checked)."""
    return [name for tool in tools or [] for name in tool if name in BUILTIN_TOOLS]


def tools_problem(tools: Any, config: Any) -> Optional[str]:
    """Why ``tools`` or ``tool_config`` is invalid."""
    if tools is not None and not isinstance(tools, list):
        return "tools must be a list"
    for number, tool in enumerate(tools or []):
        if not isinstance(tool, dict) or len(tool) != 1:
            return "tools[%d] must be an object with exactly one key" % number
        name, value = next(iter(tool.items()))
        if name != "functions" and name not in BUILTIN_TOOLS:
            return "tools[%d]: unknown tool %r" % (number, name)
        if not isinstance(value, dict):
            return "tools[%d].%s must be an object" % (number, name)
        specs = value.get("specifications") if name == "functions" else []
        if not isinstance(specs, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in specs):
            return "tools[%d].functions.specifications must be a list of objects with a name" % number
    if config is None:
        return None
    if not isinstance(config, dict) or config.get("mode", "auto") not in TOOL_MODES:
        return "tool_config.mode must be one of %s" % ", ".join(TOOL_MODES)
    names = [s["name"] for s in specifications(tools)]
    checks: Dict[str, Callable[[], List[str]]] = {
        "tool_name": lambda: builtin_names(tools),
        "function_name": lambda: names,
    }
    for key, known in checks.items():
        if key in config and config[key] not in known():
            return "tool_config.%s %r is not among the request's tools" % (key, config[key])
    if config.get("mode") == "forced" and not ("tool_name" in config or "function_name" in config):
        return "tool_config with mode forced needs tool_name or function_name"
    return _any_mode(config, names)


def _any_mode(config: Dict[str, Any], names: List[str]) -> Optional[str]:
    listed = config.get("functions_names_any")
    if config.get("mode") == "any" and not names:
        return "tool_config with mode any needs a functions tool"
    if listed is None:
        return None
    if config.get("mode") != "any":
        return "tool_config.functions_names_any needs mode any"
    if not isinstance(listed, list) or not listed or not all(isinstance(n, str) for n in listed):
        return "tool_config.functions_names_any must be a non-empty list of function names"
    unknown = [n for n in listed if n not in names]
    if unknown:
        return "tool_config.functions_names_any: %r is not among the request's functions" % unknown[0]
    return None


def top_level_problem(data: Dict[str, Any]) -> Optional[str]:
    """Why a top-level field is misplaced or mistyped (see the module doc)."""
    for name in OPTION_NAMES:
        if name in data:
            return "%s belongs in model_options on v2" % name
    for name, place in V1_NAMES.items():
        if name in data:
            return "%s is v1's; v2 takes %s" % (name, place)
    for name, kind, label in (("disable_filter", bool, "a boolean"), ("assistant_id", str, "a string"),
                              ("tools_state_id", str, "a string"), ("user_info", dict, "an object {timezone}")):
        if data.get(name) is not None and not isinstance(data[name], kind):
            return "%s must be %s" % (name, label)
    flags = data.get("flags")
    if flags is not None and not (isinstance(flags, list) and all(isinstance(f, str) for f in flags)):
        return "flags must be a list of strings"
    timezone = (data.get("user_info") or {}).get("timezone")
    if timezone is not None and not isinstance(timezone, str):
        return "user_info.timezone must be a string (an IANA name, e.g. Europe/Moscow)"
    return None


def request_problem(data: Dict[str, Any]) -> Optional[str]:
    """Why a v2 chat request is invalid, or ``None``."""
    if not isinstance(data.get("stream", False), bool):
        return "stream must be a boolean"
    return (
        top_level_problem(data)
        or messages_problem(data.get("messages"))
        or options_problem(data.get("model_options"))
        or tools_problem(data.get("tools"), data.get("tool_config"))
        or storage_problem(data.get("storage"), v1=False)
        or results_problem(data["messages"])
    )
