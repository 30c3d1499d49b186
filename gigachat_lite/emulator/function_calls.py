"""v1 function calling: which function a chat request calls, and with which arguments.

Rule (deterministic, so tests can predict it): when a chat request carries
``functions``, ``function_call`` is not ``"none"`` and the last message is the user's,
the reply calls a function instead of answering:

* ``function_call={"name": X}`` calls ``X`` (422 when ``X`` is not in ``functions``);
* ``"auto"`` (or no ``function_call``) calls the first function whose name occurs
  in the last user message, else the first function.

Its ``arguments`` fill the ``required`` parameters (all of them when none are
required): the first ``enum`` value, else by type: string -> the user's text,
integer/number -> 0, boolean -> false, array -> [], object -> {}. The reply
carries a fresh ``functions_state_id`` (and the call an ``id`` when the emulator's
``call_ids`` is ``"always"``; no recording shows one). After a ``function`` message the
default reply is ``"Function <name> returned: <content>"``. Shapes follow
``tests/data/fixtures/chat_completion_function.json``.
"""

from typing import Any, Dict, List, Optional, Tuple

from .replies import default_reply as echo_reply
from .wire import dumps, sse_event

FUNCTION_FINISH = "function_call"
_EMPTY_BY_TYPE: Dict[str, Any] = {"integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}


def _last_user_text(data: Dict[str, Any]) -> Optional[str]:
    messages = data.get("messages") or []
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    return last.get("content") or ""


def pick_function(data: Dict[str, Any]) -> Any:
    """The function description to call, ``None`` for a text reply, or an error text."""
    functions = data.get("functions")
    if not functions:
        return None
    if not isinstance(functions, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in functions):
        return "functions must be a list of objects with a name"
    choice = data.get("function_call", "auto")
    text = _last_user_text(data)
    if choice == "none" or text is None:
        return None
    if isinstance(choice, dict) and isinstance(choice.get("name"), str):
        named = [f for f in functions if f["name"] == choice["name"]]
        return named[0] if named else "function_call.name %r is not in functions" % choice["name"]
    if choice != "auto":
        return "function_call must be 'auto', 'none' or an object with a name"
    mentioned = [f for f in functions if f["name"] in text]
    return (mentioned or functions)[0]


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def arguments_for(function: Dict[str, Any], text: str) -> Dict[str, Any]:
    """Deterministic arguments for ``function`` from the user's ``text`` (see the module doc)."""
    parameters = _dict(function.get("parameters"))
    properties = _dict(parameters.get("properties"))
    required = parameters.get("required")
    names = required if isinstance(required, list) and required else list(properties)
    arguments: Dict[str, Any] = {}
    for name in names:
        schema = _dict(properties.get(name))
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            arguments[name] = schema["enum"][0]
        else:
            arguments[name] = _EMPTY_BY_TYPE.get(str(schema.get("type")), text)
    return arguments


def call_reply(
    call: Dict[str, Any],
    state_id: str,
    model: str,
    created: int,
    used: Dict[str, int],
    stream: bool,
    extra: Optional[Dict[str, Any]] = None,
) -> Tuple[Optional[bytes], Optional[List[bytes]]]:
    """The body (``stream=False``) or the events (without ``[DONE]``) of a function call.

    v1 carries one call per message; ``call`` is ``{"name", "arguments"}``, maybe with
    the ``id`` the official SDK 0.2.4a1 reads and sends back. ``extra`` top-level fields
    (``thread_id``, ``message_id``) follow ``model``.
    """
    message = {"content": "", "role": "assistant", "function_call": call, "functions_state_id": state_id}
    head: Dict[str, Any] = {"created": created, "model": model}
    head.update(extra or {})
    head["object"] = "chat.completion"
    if not stream:
        body = {"choices": [{"message": message, "index": 0, "finish_reason": FUNCTION_FINISH}], **head, "usage": used}
        return dumps(body), None
    first = {"choices": [{"delta": message, "index": 0}], **head}
    last = {"choices": [{"delta": {"content": ""}, "index": 0, "finish_reason": FUNCTION_FINISH}], **head, "usage": used}
    return None, [sse_event(first), sse_event(last)]


def last_user_text(data: Dict[str, Any]) -> str:
    """The content of the last message when it is the user's, else ``""``."""
    return _last_user_text(data) or ""


def default_reply(data: Dict[str, Any]) -> str:
    """The echo reply, or ``"Function <name> returned: <content>"`` after a function message."""
    messages = data.get("messages") or []
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "function":
        return "Function %s returned: %s" % (last.get("name") or "?", last.get("content") or "")
    return echo_reply(data)
