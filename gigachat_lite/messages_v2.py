"""Messages for the v2 contract: every ``content`` becomes a list of parts.

v2 (``POST /api/v2/chat/completions``) takes ``content`` as a list of parts,
each a one-key object: ``{"text": str}``, ``{"files": [{"id": str}]}``,
``{"function_call": {"name", "arguments"}}``, ``{"function_result": {"name",
"result"}}``. A plain ``str`` prompt, ``{"role", "content": str}`` dicts and
v1 habits (``attachments``, the ``function`` role, ``functions_state_id``)
are converted; parts lists pass through once checked. Bad input is refused
here, before any request, with the item named: ``messages[1].content[0]:
unknown part 'img'``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Sequence, Union

__all__ = ["normalize_messages_v2", "ROLES_V2", "PART_KINDS"]

ROLES_V2 = ("system", "user", "assistant", "tool", "function")
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
