"""``POST /api/v1/chat/completions``: request checks and the plain or streamed v1 reply."""

import time
from typing import Any, Callable, Dict, Optional, Union

from .function_calls import default_reply, function_call_reply, pick_function
from .replies import (
    DONE_EVENT,
    ChatSettings,
    completion_body,
    reply_text,
    stream_events,
    truncate,
    usage,
)
from .wire import SSE_TYPE, Reply, error_reply

ROLES = ("system", "user", "assistant", "function")
# The real endpoint answers with a versioned name, e.g. "GigaChat:2.0.28.2".
MODEL_VERSION = "emulator"


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


def chat_model(
    state: ChatSettings, data: Dict[str, Any], problem: Callable[[Dict[str, Any]], Optional[str]]
) -> Union[str, Reply]:
    """The requested chat model, or the 404/422 the real API gives for a bad model or body."""
    model = data.get("model", "GigaChat")
    if not isinstance(model, str):
        return error_reply(422, "model must be a string")
    if (model, "chat") not in state.model_list():
        return error_reply(404, "No such model")
    why = problem(data)
    return model if why is None else error_reply(422, why)


def _problem(data: Dict[str, Any]) -> Optional[str]:
    problem = check_messages(data.get("messages"))
    stream = data.get("stream", False)
    max_tokens = data.get("max_tokens")
    if problem is None and not isinstance(stream, bool):
        problem = "stream must be a boolean"
    if problem is None and max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        problem = "max_tokens must be a positive integer"
    return problem


def chat(state: ChatSettings, data: Dict[str, Any]) -> Reply:
    """``POST /chat/completions``, plain or ``"stream": true``."""
    model = chat_model(state, data, _problem)
    if isinstance(model, Reply):
        return model
    try:
        full = reply_text(state.reply if state.reply is not None else default_reply, data)
    except Exception:  # a broken reply callable is the server's fault, as a 500
        return error_reply(500, "Internal Server Error")
    text, finish = truncate(full, data.get("max_tokens"), state.piece_size)
    used = usage(data, text, state.piece_size)
    created = int(time.time())
    name = "%s:%s" % (model, MODEL_VERSION)
    function = pick_function(data)
    if isinstance(function, str):
        return error_reply(422, function)
    stream = data.get("stream", False)
    if function is not None:
        body, events = function_call_reply(data, function, name, created, state.piece_size, stream)
        if events is not None:
            return Reply(200, content_type=SSE_TYPE, events=events + [DONE_EVENT])
        return Reply(200, body or b"")
    if stream:
        events = stream_events(text, finish, name, created, used, state.piece_size)
        return Reply(200, content_type=SSE_TYPE, events=events + [DONE_EVENT])
    return Reply(200, completion_body(text, finish, name, created, used))
