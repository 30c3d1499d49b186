"""``POST /api/v2/chat/completions``: what the emulated GigaChat-3 answers, plain or streamed.

The turn is decided like this (deterministic, so tests can predict it), when the last
message is the user's and ``tool_config.mode`` is not ``"none"``:

* ``tool_config.tool_name`` runs that built-in tool (see ``builtin_tools``);
* otherwise, with ``functions`` among the tools, the turn calls functions, chosen as
  ``tool_calls`` says (the forced one; or every offered function the user's text names,
  in order, else the first; mode ``any`` picks among ``functions_names_any``;
  ``model_options.parallel_tool_calls: false`` keeps one), each part
  ``{"function_call": {"id", "name", "arguments"}}`` (arguments as in
  ``function_calls.arguments_for``), finish_reason ``function_call``;
* otherwise the first built-in tool asked for runs.

Any other turn answers text: ``model_options.response_format`` gives a JSON value for
the schema or a string for the regex (``structured``); else the configured reply, or
``"Function <name> returned: <result JSON>"`` for each result after ``tool``
message(s), or ``"Echo: <user text>"``. ``model_options.reasoning.effort`` adds
reasoning text (see ``replies_v2``; ``off`` adds none), cut to ``reasoning.max_tokens``;
``max_tokens`` cuts the text with finish_reason ``length``; ``top_logprobs`` adds
``logprobs`` to each text part (see ``logprobs``). A reply to a request with tools
carries a fresh ``tool_state_id``; follow-ups send it back as ``tools_state_id``,
which is accepted as is, and their results are checked against the calls
(``tool_calls``). ``assistant_id`` and ``storage`` work as ``chat_context`` says; the
``X-Session-ID`` header feeds the prompt cache (``prompt_cache``). Files the ``files`` parts
reference are checked as ``files`` says: known, the caller's, within GigaChat's counts and sizes.
"""

import json
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

from .builtin_tools import STAND_INS
from .chat_context import ChatState, Context, open_thread, resolve, session_of, units
from .chat_v1 import MODEL_VERSION, reasoning_for
from .checks_v2 import builtin_names, request_problem, schema_of, specifications
from .files import files_problem
from .logprobs import for_text
from .replies import count_tokens, reply_text, truncate
from .replies_v2 import completion_body, message, output_tokens, stream_events, usage
from .structured import regex_text, schema_text
from .thread_store import Message
from .tool_calls import call_parts, choose
from .wire import SSE_TYPE, Reply, dumps, error_reply

Parts = List[Dict[str, Any]]


def text_of(message: Dict[str, Any]) -> str:
    """The text parts of a message, joined."""
    return "".join(p["text"] for p in message.get("content") or [] if isinstance(p.get("text"), str))


def _part_text(part: Dict[str, Any]) -> str:
    text = part.get("text")
    return text if isinstance(text, str) else dumps(part).decode("utf-8")


def prompt_pairs(messages: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """``(role, text)`` of every part (a non-text part as its JSON): what the prompt counts."""
    return [(m["role"], _part_text(p)) for m in messages for p in m["content"]]


def _results(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The function results of the trailing ``tool`` messages, in order."""
    found: List[Dict[str, Any]] = []
    for message in reversed(messages):
        if message["role"] != "tool":
            break
        found[:0] = [p["function_result"] for p in message["content"] if "function_result" in p]
    return found


def default_reply(data: Dict[str, Any]) -> str:
    """The echo of the last user text, or the function results after ``tool`` message(s)."""
    results = _results(data["messages"])
    if results:
        return " ".join(
            "Function %s returned: %s" % (r["name"], json.dumps(r["result"], ensure_ascii=False)) for r in results
        )
    users = [m for m in data["messages"] if m["role"] == "user"]
    return "Echo: " + (text_of(users[-1]) if users else "")


def _tool_turn(state: ChatState, data: Dict[str, Any], text: str, state_id: str) -> Optional[Tuple[Parts, str]]:
    """The parts and finish_reason of a tool turn, or ``None`` for a text answer."""
    config = data.get("tool_config") or {}
    if data["messages"][-1]["role"] != "user" or config.get("mode") == "none":
        return None
    specs = specifications(data.get("tools"))
    builtins = builtin_names(data.get("tools"))
    if "tool_name" in config or ("function_name" not in config and not specs and builtins):
        return STAND_INS[config.get("tool_name") or builtins[0]](text, state.file_store), "stop"
    if not specs:
        return None
    chosen = choose(specs, config, data.get("model_options") or {}, text)
    return call_parts(chosen, text, state_id, state.call_ids == "always"), "function_call"


def _text_turn(state: ChatState, data: Dict[str, Any]) -> Tuple[Parts, str]:
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


def _reasoning(data: Dict[str, Any], text: str, piece_size: int) -> Optional[str]:
    reasoning = (data.get("model_options") or {}).get("reasoning") or {}
    return reasoning_for(reasoning.get("effort"), reasoning.get("max_tokens"), text, piece_size)


def _history(context: Context) -> List[Dict[str, Any]]:
    """The assistant's instructions and the stored thread as v2 text messages."""
    messages: List[Dict[str, Any]] = []
    if context.assistant is not None and context.assistant.instructions:
        messages.append({"role": "system", "content": [{"text": context.assistant.instructions}]})
    for stored in context.history:
        role = stored.role if stored.role in ("system", "user", "assistant") else "tool"
        messages.append({"role": role, "content": [{"text": stored.content}]})
    return messages


def _store(state: ChatState, context: Context, data: Dict[str, Any], reply: Dict[str, Any], finish: str) -> Dict[str, Any]:
    """Keep the turn in its thread; the ``message_id`` and ``thread_id`` the reply carries.

    A thread holds v1-style messages: text parts joined, other parts as their JSON, a
    ``tool`` message as a ``function`` one.
    """
    thread = open_thread(state, context)
    asked = []
    for sent in data["messages"]:
        content = text_of(sent) or dumps(sent["content"]).decode("utf-8")
        asked.append(Message(role="function" if sent["role"] == "tool" else sent["role"], content=content,
                             model=context.model))
    thread.add(asked)
    calls = [p["function_call"] for p in reply["content"] if "function_call" in p]
    answer = Message(role="assistant", content=text_of(reply), model=context.model,
                     function_call=calls[0] if calls else None, finish_reason=finish)
    thread.finish_run(answer)
    return {"message_id": answer.message_id, "thread_id": thread.id}


def chat(state: ChatState, data: Dict[str, Any], headers: Any = None) -> Reply:
    """``POST /api/v2/chat/completions``, plain or ``"stream": true``."""
    if isinstance(data.get("storage"), dict):  # the thread's history is read, then added to
        with state.threads.lock:
            return _chat(state, data, headers)
    return _chat(state, data, headers)


def _chat(state: ChatState, data: Dict[str, Any], headers: Any) -> Reply:
    context = resolve(state, data, v1=False)
    if isinstance(context, Reply):
        return context
    why = request_problem(data)
    if why is not None:
        return error_reply(422, why)
    refused = files_problem(state.file_store, data["messages"], True, (headers or {}).get("X-Client-ID"))
    if refused is not None:
        return refused
    seen = dict(data, messages=_history(context) + data["messages"])  # the request as the model sees it
    text = text_of(data["messages"][-1])
    state_id = str(uuid.uuid4())
    try:
        parts, finish = _tool_turn(state, seen, text, state_id) or _text_turn(state, seen)
    except Exception:  # a broken reply callable is the server's fault, as a 500
        return error_reply(500, "Internal Server Error")
    piece = state.piece_size
    reasoning = _reasoning(seen, text, piece)
    top = (seen.get("model_options") or {}).get("top_logprobs")
    if top:
        parts = [dict(p, logprobs=for_text(p["text"], top, piece)) if "text" in p else p for p in parts]
    reply = message(parts, state_id if data.get("tools") else None, reasoning)
    session, prompt = session_of(headers), units(prompt_pairs(seen["messages"]), piece)
    cached = state.prompt_cache.lookup(session, prompt)
    state.prompt_cache.remember(session, prompt + units([("assistant", _part_text(p)) for p in parts], piece))
    used = usage(len(prompt), output_tokens(parts, reasoning, piece), cached)
    extra = _store(state, context, data, reply, finish) if context.store else None
    name, created_at = "%s:%s" % (context.model, MODEL_VERSION), int(time.time())
    if data.get("stream"):
        events = stream_events(name, created_at, reply, finish, used, piece, extra)
        return Reply(200, content_type=SSE_TYPE, events=events, named=True)
    return Reply(200, completion_body(name, created_at, reply, finish, used, extra))
