"""Reading v2 replies: parts -> text, reasoning, function call, tool results; usage normalised.

A v2 reply (and each streamed ``response.message.delta``) carries
``messages: [{"role": "assistant", "tool_state_id", "content": [parts]}]``.
:func:`read_messages` spreads the parts over a result object's public fields:

* ``{"text"}`` -> the answer (what iterating yields);
* ``{"reasoning"}`` / ``{"reasoning_content"}`` (a str or ``{"text"}``), or a
  message-level ``reasoning_content`` -> ``reasoning``, never the answer
  (the recordings show no reasoning yet; these are the shapes we accept);
* ``{"function_call"}`` -> ``function_call``; ``tool_state_id`` -> ``tools_state_id``;
* ``{"files": [{"id", "mime", "target"}]}`` -> ``files`` (images the model
  drew: :meth:`V2Result.download` fetches their bytes);
* ``{"inline_data": {"sources", "images", ...}}`` -> ``sources`` and ``inline_data``;
* ``{"tool_execution"}`` -> ``tool_executions``.

:class:`V2Result` gives v2 replies and streams the v2 history helpers.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .endpoints import file_content

__all__ = ["V2Result", "read_messages", "normalize_usage", "reset_v2_fields"]


def normalize_usage(raw: Any) -> Optional[Dict[str, Any]]:
    """v2 usage (``input_tokens``, ``output_tokens``, ...) under v1's names, ``cached_tokens`` when known."""
    if not isinstance(raw, dict):
        return None
    usage: Dict[str, Any] = {
        "prompt_tokens": raw.get("input_tokens", raw.get("prompt_tokens")),
        "completion_tokens": raw.get("output_tokens", raw.get("completion_tokens")),
        "total_tokens": raw.get("total_tokens"),
    }
    details = raw.get("input_tokens_details")
    if isinstance(details, dict) and details.get("cached_tokens") is not None:
        usage["cached_tokens"] = details["cached_tokens"]
    return usage


def reset_v2_fields(target: Any) -> None:
    """The v2 fields a result has before anything arrived."""
    target.tools_state_id = None
    target.files = []
    target.sources = {}
    target.inline_data = {}
    target.tool_executions = []
    target.thread_id = None
    target.message_id = None
    target.usage_raw = None


def read_header(target: Any, payload: Dict[str, Any]) -> None:
    """The top-level fields of a reply or an event."""
    if target.model is None and payload.get("model") is not None:
        target.model = payload.get("model")
        target.created = payload.get("created_at", payload.get("created"))
    if payload.get("finish_reason"):
        target.finish_reason = payload["finish_reason"]
    if payload.get("usage"):
        target.usage_raw = payload["usage"]
        target.usage = normalize_usage(payload["usage"])
    for name in ("thread_id", "message_id"):
        if payload.get(name):
            setattr(target, name, payload[name])
    state = payload.get("tools_state_id") or payload.get("tool_state_id")
    if state:
        target.tools_state_id = state


def read_messages(target: Any, payload: Dict[str, Any], merge_call: Any = None) -> Tuple[List[str], List[str]]:
    """Spread the assistant parts of ``payload`` over ``target``; return (texts, reasonings) in order.

    ``merge_call(old, fragment)`` joins a streamed function call's fragments;
    without it the last call wins (a whole reply has one).
    """
    texts: List[str] = []
    thoughts: List[str] = []
    messages = payload.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict) or message.get("role", "assistant") != "assistant":
            continue
        state = message.get("tool_state_id") or message.get("tools_state_id")
        if state:
            target.tools_state_id = state
        if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
            thoughts.append(message["reasoning_content"])
        if message.get("function_call"):
            target.function_call = _call(target.function_call, message["function_call"], merge_call)
        _read_inline(target, message.get("inline_data"))
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str) and part["text"]:
                texts.append(part["text"])
            for key in ("reasoning", "reasoning_content"):
                thought = part.get(key)
                thought = thought.get("text") if isinstance(thought, dict) else thought
                if isinstance(thought, str) and thought:
                    thoughts.append(thought)
            if part.get("function_call"):
                target.function_call = _call(target.function_call, part["function_call"], merge_call)
            if isinstance(part.get("files"), list):
                target.files.extend(f for f in part["files"] if isinstance(f, dict))
            _read_inline(target, part.get("inline_data"))
            if isinstance(part.get("tool_execution"), dict):
                target.tool_executions.append(part["tool_execution"])
    if thoughts:
        target.reasoning += "".join(thoughts)
    return texts, thoughts


def _call(old: Any, fragment: Any, merge_call: Any) -> Any:
    if merge_call is not None:
        return merge_call(old, fragment)
    return dict(fragment) if isinstance(fragment, dict) else old


def _read_inline(target: Any, inline: Any) -> None:
    if not isinstance(inline, dict):
        return
    for key, value in inline.items():
        if key == "sources" and isinstance(value, dict):
            target.sources.update(value)
        elif isinstance(value, list):
            target.inline_data.setdefault(key, []).extend(value)
        else:
            target.inline_data[key] = value


class V2Result:
    """The v2 history helpers shared by :class:`ChatReplyV2` and :class:`ChatStreamV2`.

    Attributes (besides those of every reply): ``tools_state_id`` (the reply's
    ``tool_state_id``), ``files`` (generated files: ``{"id", "mime", "target"}``),
    ``sources`` (web search sources by number: ``{"url", "title"}``),
    ``inline_data`` (other inline data: ``images``, ``widgets``, ...),
    ``tool_executions``, ``thread_id``, ``usage_raw`` (usage as sent).
    """

    api_version = "v2"
    text: str
    function_call: Optional[Dict[str, Any]]
    tools_state_id: Optional[str]
    files: List[Dict[str, Any]]
    finish_reason: Optional[str]
    session: Any

    def __iter__(self) -> Iterator[str]:
        raise NotImplementedError

    def assistant_message(self) -> Dict[str, Any]:
        """This reply as a v2 assistant turn (parts, ``tools_state_id``) for the next call's history."""
        parts: List[Dict[str, Any]] = []
        if self.text:
            parts.append({"text": self.text})
        if self.function_call:
            parts.append({"function_call": self.function_call})
        message: Dict[str, Any] = {"role": "assistant", "content": parts or [{"text": ""}]}
        if self.tools_state_id:
            message["tools_state_id"] = self.tools_state_id
        return message

    def function_result(self, result: Any) -> List[Dict[str, Any]]:
        """The two v2 messages answering this reply's function call, to append to the history.

        ``[assistant turn with the function_call part and tools_state_id,
        {"role": "tool", "tools_state_id", "content": [{"function_result":
        {"name", "result"}}]}]``. ``result`` is any JSON value (v2 sends it as
        an object, not as JSON text). A stream is read to its end first.

        Raises:
            ValueError: the reply did not call a function.
            TypeError: ``result`` cannot be sent as JSON.
        """
        for _ in self:  # a stream's call is complete only at its end
            pass
        call = self.function_call
        if not call or not isinstance(call.get("name"), str):
            raise ValueError(f"the reply did not call a function (finish_reason {self.finish_reason!r})")
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"result cannot be sent as JSON ({exc})") from None
        answer: Dict[str, Any] = {"role": "tool", "content": [{"function_result": {"name": call["name"], "result": result}}]}
        if self.tools_state_id:
            answer["tools_state_id"] = self.tools_state_id
        return [self.assistant_message(), answer]

    def download(self, file: Any = 0) -> bytes:
        """The bytes of a generated file (``GET /files/{id}/content``) on the session that made this reply.

        ``file`` is an index into :attr:`files` (default: the first), one of
        its dicts, or a file id.

        Raises:
            ValueError: the reply has no such file.
        """
        for _ in self:
            pass
        if isinstance(file, int) and not isinstance(file, bool):
            if not 0 <= file < len(self.files) and not -len(self.files) <= file < 0:
                raise ValueError(f"the reply has {len(self.files)} generated file(s), no file #{file}")
            file = self.files[file]
        file_id = file.get("id") if isinstance(file, dict) else file
        if not isinstance(file_id, str) or not file_id:
            raise ValueError(f"file must be an index into files, a file dict or a file id, got {file!r}")
        return file_content(file_id, session=self.session)
