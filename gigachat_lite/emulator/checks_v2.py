"""v2 request checks: each returns why the request is invalid (naming the item), or ``None``.

The real API refuses such requests with 422 ``{"status": 422, "message": ...}``; the
emulator's messages name the offending item so a test can see which one it was.
"""

import json
import re
from typing import Any, Callable, Dict, List, Optional

ROLES = ("system", "user", "assistant", "tool")
PART_KINDS = ("text", "files", "function_call", "function_result", "inline_data", "tool_execution")
BUILTIN_TOOLS = ("web_search", "code_interpreter", "image_generate", "url_content_extraction")
TOOL_MODES = ("auto", "forced", "none")
EFFORTS = ("low", "medium", "high")
FORMAT_TYPES = ("text", "json_schema", "regex")
_NUMBERS = ("temperature", "top_p", "repetition_penalty", "update_interval")


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
        if "tools_state_id" in message and not isinstance(message["tools_state_id"], str):
            return "%s.tools_state_id must be a string" % where
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
    reasoning = options.get("reasoning")
    if reasoning is not None and not (isinstance(reasoning, dict) and reasoning.get("effort") in EFFORTS):
        return "model_options.reasoning.effort must be one of %s" % ", ".join(EFFORTS)
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
    checks: Dict[str, Callable[[], List[str]]] = {
        "tool_name": lambda: builtin_names(tools),
        "function_name": lambda: [s["name"] for s in specifications(tools)],
    }
    for key, known in checks.items():
        if key in config and config[key] not in known():
            return "tool_config.%s %r is not among the request's tools" % (key, config[key])
    if config.get("mode") == "forced" and not ("tool_name" in config or "function_name" in config):
        return "tool_config with mode forced needs tool_name or function_name"
    return None


def request_problem(data: Dict[str, Any]) -> Optional[str]:
    """Why a v2 chat request is invalid, or ``None``."""
    if not isinstance(data.get("stream", False), bool):
        return "stream must be a boolean"
    return (
        messages_problem(data.get("messages"))
        or options_problem(data.get("model_options"))
        or tools_problem(data.get("tools"), data.get("tool_config"))
    )
