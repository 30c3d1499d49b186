"""``POST /api/v2/chat/completions``: what the emulated GigaChat-3 answers, plain or streamed.

The turn is decided like this (deterministic, so tests can predict it), when the last
message is the user's and ``tool_config.mode`` is not ``"none"``:

* ``tool_config.function_name`` calls that function; ``tool_config.tool_name`` runs
  that built-in tool (see ``builtin_tools``);
* otherwise, with ``functions`` among the tools, the first function whose name occurs
  in the user's text is called, else the first one (arguments as in
  ``function_calls.arguments_for``), finish_reason ``function_call``;
* otherwise the first built-in tool asked for runs.

Any other turn answers text: ``model_options.response_format`` gives a JSON value for
the schema or a string for the regex (``structured``); else the configured reply, or
``"Function <name> returned: <result JSON>"`` after a ``tool`` message, or
``"Echo: <user text>"``. ``model_options.reasoning`` adds reasoning text (see
``replies_v2``), ``max_tokens`` cuts the text with finish_reason ``length``. A reply to a
request with tools carries a fresh ``tool_state_id``; follow-ups send it back as
``tools_state_id``, which is accepted as is.
"""

import json
import time
import uuid
from typing import Any, Dict, List, Optional, Protocol, Tuple

from .builtin_tools import STAND_INS
from .chat_v1 import MODEL_VERSION, chat_model
from .checks_v2 import builtin_names, request_problem, schema_of, specifications
from .files import FileStore
from .function_calls import arguments_for
from .replies import ChatSettings, count_tokens, reply_text, truncate
from .replies_v2 import completion_body, message, output_tokens, stream_events, usage
from .structured import regex_text, schema_text
from .wire import SSE_TYPE, Reply, dumps, error_reply

Parts = List[Dict[str, Any]]


class State(ChatSettings, Protocol):
    """The emulator state a v2 reply reads: chat settings and the store for generated files."""

    file_store: FileStore


def text_of(message: Dict[str, Any]) -> str:
    """The text parts of a message, joined."""
    return "".join(p["text"] for p in message.get("content") or [] if isinstance(p.get("text"), str))


def input_tokens(data: Dict[str, Any], piece_size: int) -> int:
    """Emulated prompt tokens: text parts by length, any other part as its JSON."""
    total = 0
    for message in data["messages"]:
        for part in message["content"]:
            text = part.get("text")
            total += count_tokens(text if isinstance(text, str) else dumps(part).decode("utf-8"), piece_size)
    return total


def default_reply(data: Dict[str, Any]) -> str:
    """The echo of the last user text, or the function results after a ``tool`` message."""
    last = data["messages"][-1]
    results = [p["function_result"] for p in last["content"] if "function_result" in p]
    if last["role"] == "tool" and results:
        return " ".join(
            "Function %s returned: %s" % (r["name"], json.dumps(r["result"], ensure_ascii=False)) for r in results
        )
    users = [m for m in data["messages"] if m["role"] == "user"]
    return "Echo: " + (text_of(users[-1]) if users else "")


def _tool_turn(state: State, data: Dict[str, Any], text: str) -> Optional[Tuple[Parts, str]]:
    """The parts and finish_reason of a tool call, or ``None`` for a text answer."""
    config = data.get("tool_config") or {}
    if data["messages"][-1]["role"] != "user" or config.get("mode") == "none":
        return None
    specs = specifications(data.get("tools"))
    builtins = builtin_names(data.get("tools"))
    if "tool_name" in config or ("function_name" not in config and not specs and builtins):
        return STAND_INS[config.get("tool_name") or builtins[0]](text, state.file_store), "stop"
    if not specs:
        return None
    named = [s for s in specs if s["name"] == config.get("function_name")]
    mentioned = [s for s in specs if s["name"] in text]
    spec = (named or mentioned or specs)[0]
    call = {"name": spec["name"], "arguments": arguments_for(spec, text)}
    return [{"function_call": call}], "function_call"


def _text_turn(state: State, data: Dict[str, Any]) -> Tuple[Parts, str]:
    options = data.get("model_options") or {}
    fmt = options.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        full = schema_text(schema_of(fmt))
    elif fmt.get("type") == "regex":
        full = regex_text(fmt["regex"], default_reply(data))
    else:
        full = reply_text(state.reply if state.reply is not None else default_reply, data)
    text, finish = truncate(full, options.get("max_tokens"), state.piece_size)
    return [{"text": text}], finish


def _reasoning(data: Dict[str, Any], text: str) -> Optional[str]:
    effort = ((data.get("model_options") or {}).get("reasoning") or {}).get("effort")
    if effort is None:
        return None
    return "Reasoning with %s effort about: %s" % (effort, text)


def chat(state: State, data: Dict[str, Any]) -> Reply:
    """``POST /api/v2/chat/completions``, plain or ``"stream": true``."""
    model = chat_model(state, data, request_problem)
    if isinstance(model, Reply):
        return model
    text = text_of(data["messages"][-1])
    try:
        parts, finish = _tool_turn(state, data, text) or _text_turn(state, data)
    except Exception:  # a broken reply callable is the server's fault, as a 500
        return error_reply(500, "Internal Server Error")
    reasoning = _reasoning(data, text)
    reply = message(parts, str(uuid.uuid4()) if data.get("tools") else None, reasoning)
    used = usage(input_tokens(data, state.piece_size), output_tokens(parts, reasoning, state.piece_size))
    name, created_at = "%s:%s" % (model, MODEL_VERSION), int(time.time())
    if data.get("stream"):
        events = stream_events(name, created_at, reply, finish, used, state.piece_size)
        return Reply(200, content_type=SSE_TYPE, events=events, named=True)
    return Reply(200, completion_body(name, created_at, reply, finish, used))
