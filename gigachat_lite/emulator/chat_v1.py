"""``POST /api/v1/chat/completions``: request checks and the plain or streamed v1 reply.

Besides the messages and ``stream``/``max_tokens``, it reads the fields the official
SDK 0.2.4a1 sends: ``reasoning_effort`` (any string; ``off`` means none) adds
``reasoning_content`` to the message, cut to ``reasoning_max_tokens``; ``n`` (1-4,
plain replies only) repeats the choice; ``assistant_id`` and ``storage`` run the turn
in an assistant's context and a stored thread (see ``chat_context``); the
``X-Session-ID`` header feeds the prompt cache (``prompt_cache``). v2-only fields
(``model_options``, ``tools``, ``tool_config``, ``disable_filter``, ``user_info``) are
refused with 422, naming the field: the real v1 endpoint would ignore them, hiding
the mistake. Files the messages reference (``attachments``) are checked as ``files`` says:
known, the caller's, within GigaChat's counts and sizes.
"""

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from .chat_context import ChatState, Context, instructions, open_thread, resolve, session_of, storage_problem, units
from .files import files_problem
from .function_calls import arguments_for, call_reply, default_reply, last_user_text, pick_function
from .replies import DONE_EVENT, completion_body, count_tokens, reply_text, stream_events, truncate, usage
from .thread_store import Message
from .tool_calls import call_id
from .wire import SSE_TYPE, Reply, error_reply

ROLES = ("system", "user", "assistant", "function")
# The real endpoint answers with a versioned name, e.g. "GigaChat:2.0.28.2".
MODEL_VERSION = "emulator"
MAX_CHOICES = 4
V2_ONLY = ("model_options", "tools", "tool_config", "disable_filter", "user_info")


def check_messages(messages: Any) -> Optional[str]:
    """Why ``messages`` is invalid, or ``None`` when it is fine."""
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            return "messages[%d] must be an object" % number
        if message.get("role") not in ROLES:
            return "messages[%d].role must be one of %s" % (number, ", ".join(ROLES))
        content = message.get("content")
        # An assistant turn that called a function may carry no text.
        if content is None and message["role"] == "assistant" and "function_call" in message:
            continue
        if not isinstance(content, str):
            return "messages[%d].content must be a string" % number
    return None


def positive(value: Any) -> bool:
    """Whether ``value`` is an int >= 1 (``bool`` is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _problem(data: Dict[str, Any]) -> Optional[str]:
    problem = check_messages(data.get("messages"))
    if problem is not None:
        return problem
    misplaced = [name for name in V2_ONLY if name in data]
    n: Any = data.get("n")
    checks = (
        (not misplaced, "%s is a v2 field (POST /api/v2/chat/completions), not v1's" % (misplaced or ["?"])[0]),
        (isinstance(data.get("stream", False), bool), "stream must be a boolean"),
        (data.get("max_tokens") is None or positive(data["max_tokens"]), "max_tokens must be a positive integer"),
        (data.get("reasoning_effort") is None or isinstance(data["reasoning_effort"], str),
         "reasoning_effort must be a string"),
        (data.get("reasoning_max_tokens") is None or positive(data["reasoning_max_tokens"]),
         "reasoning_max_tokens must be a positive integer"),
        (n is None or (positive(n) and n <= MAX_CHOICES), "n must be an integer from 1 to %d" % MAX_CHOICES),
        (not (data.get("stream") and positive(n) and n > 1), "n > 1 is not available with stream"),
    )
    why = next((why for fine, why in checks if not fine), None)
    return why or storage_problem(data.get("storage"), v1=True)


def reasoning_for(effort: Any, budget: Any, text: str, piece_size: int) -> Optional[str]:
    """The emulated reasoning for ``effort`` (``None`` without one, or for ``off``), cut to ``budget``."""
    if not isinstance(effort, str) or effort == "off":
        return None
    thought = "Reasoning with %s effort about: %s" % (effort, text)
    return truncate(thought, budget, piece_size)[0] if positive(budget) else thought


@dataclass
class Turn:
    """What the emulated model answers to a v1 request."""

    text: str
    finish_reason: str
    usage: Dict[str, int]
    reasoning: Optional[str] = None
    call: Optional[Dict[str, Any]] = None
    state_id: Optional[str] = None


def effective(data: Dict[str, Any], context: Context) -> Dict[str, Any]:
    """The request as the model sees it: instructions and stored history first, the
    assistant's functions when the request offers none."""
    history = [m.chat() for m in context.history]
    body = dict(data, messages=instructions(context) + history + list(data["messages"]))
    if "functions" not in data and context.assistant is not None and context.assistant.functions:
        body["functions"] = context.assistant.functions
    return body


def answer(state: ChatState, body: Dict[str, Any], session: Optional[str] = None) -> Union[Turn, str]:
    """The turn for an effective v1 ``body`` (see :func:`effective`), or why it is refused.

    Raises what a broken reply callable raises (the caller answers 500).
    """
    function = pick_function(body)
    if isinstance(function, str):
        return function
    piece = state.piece_size
    prompt = units([(m["role"], m["content"]) for m in body["messages"] if isinstance(m.get("content"), str)], piece)
    cached = state.prompt_cache.lookup(session, prompt)
    if function is not None:
        state_id = str(uuid.uuid4())
        call: Dict[str, Any] = {"name": function["name"], "arguments": arguments_for(function, last_user_text(body))}
        if state.call_ids == "always":  # v1 has one call a message; no recording shows an id
            call = dict(id=call_id(state_id, 0, function["name"]), **call)
        arguments = json.dumps(call["arguments"], ensure_ascii=False)
        state.prompt_cache.remember(session, prompt + units([("assistant", arguments)], piece))
        return Turn("", "function_call", usage(body, arguments, piece, cached), call=call, state_id=state_id)
    full = reply_text(state.reply if state.reply is not None else default_reply, body)
    text, finish = truncate(full, body.get("max_tokens"), piece)
    reasoning = reasoning_for(body.get("reasoning_effort"), body.get("reasoning_max_tokens"), last_user_text(body), piece)
    used = usage(body, text, piece, cached)
    if reasoning is not None:  # reasoning is generated, so it is billed as completion
        extra = count_tokens(reasoning, piece)
        used.update(completion_tokens=used["completion_tokens"] + extra, total_tokens=used["total_tokens"] + extra)
    state.prompt_cache.remember(session, prompt + units([("assistant", text)], piece))
    return Turn(text, finish, used, reasoning)


def attachments(state: ChatState, file_ids: Any) -> List[Dict[str, str]]:
    """``[{"file_id", "name"}]`` of a message's ``attachments`` (ids of stored files)."""
    found = [(f, state.file_store.get(f)) for f in file_ids or [] if isinstance(f, str)]
    return [{"file_id": f, "name": str(entry[0]["filename"]) if entry else f} for f, entry in found]


def stored(state: ChatState, data: Dict[str, Any], model: str) -> List[Message]:
    """The request's messages as a thread keeps them."""
    kept = []
    for message in data["messages"]:
        files = attachments(state, message.get("attachments"))
        kept.append(Message(role=message["role"], content=message.get("content") or "", model=model,
                            attachments=files, function_call=message.get("function_call"), name=message.get("name")))
    return kept


def chat(state: ChatState, data: Dict[str, Any], headers: Any = None) -> Reply:
    """``POST /chat/completions``, plain or ``"stream": true``."""
    if isinstance(data.get("storage"), dict):  # the thread's history is read, then added to
        with state.threads.lock:
            return _chat(state, data, headers)
    return _chat(state, data, headers)


def _chat(state: ChatState, data: Dict[str, Any], headers: Any) -> Reply:
    context = resolve(state, data, v1=True)
    if isinstance(context, Reply):
        return context
    why = _problem(data)
    if why is not None:
        return error_reply(422, why)
    refused = files_problem(state.file_store, data["messages"], False, (headers or {}).get("X-Client-ID"))
    if refused is not None:
        return refused
    body = effective(data, context)
    try:
        turn = answer(state, body, session_of(headers))
    except Exception:  # a broken reply callable is the server's fault, as a 500
        return error_reply(500, "Internal Server Error")
    if isinstance(turn, str):
        return error_reply(422, turn)
    extra: Dict[str, Any] = {}
    if context.store:
        thread = open_thread(state, context)
        thread.add(stored(state, data, context.model))
        reply = Message(role="assistant", content=turn.text, model=context.model,
                        function_call=turn.call, finish_reason=turn.finish_reason)
        thread.finish_run(reply)
        extra = {"thread_id": thread.id, "message_id": reply.message_id}
    name, created = "%s:%s" % (context.model, MODEL_VERSION), int(time.time())
    stream = bool(data.get("stream", False))
    if turn.call is not None and turn.state_id is not None:
        plain, events = call_reply(turn.call, turn.state_id, name, created, turn.usage, stream, extra)
        if events is not None:
            return Reply(200, content_type=SSE_TYPE, events=events + [DONE_EVENT])
        return Reply(200, plain or b"")
    if stream:
        events = stream_events(turn.text, turn.finish_reason, name, created, turn.usage, state.piece_size,
                               reasoning=turn.reasoning, extra=extra)
        return Reply(200, content_type=SSE_TYPE, events=events + [DONE_EVENT])
    return Reply(200, completion_body(turn.text, turn.finish_reason, name, created, turn.usage,
                                      reasoning=turn.reasoning, extra=extra, choices=data.get("n") or 1))
