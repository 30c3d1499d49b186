"""Reading a v1 stream: each event's data (``{"choices": [{"delta": ...}]}`` or ``[DONE]``) -> the text to yield.

:class:`ChunkParser` is also the interface :class:`~.stream_v2.V2ChunkParser`
keeps: ``feed(data)`` for any event, ``common(obj)`` for the usual one (the
fast path in :mod:`.wire` calls it on JSON it has read itself).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple, Union

from .errors import APIError, StreamError
from .redact import scrub, server_message
from .reasoning import ReasoningChunk

__all__ = ["ChunkParser", "DONE", "MISS", "Feed", "pieces", "raise_if_error"]

DONE = "[DONE]"
MISS: Any = type("Miss", (), {"__slots__": (), "__repr__": lambda self: "MISS"})()  # not the common shape
_loads = json.loads

# What a parser's feed() returns for one event: its text, nothing, or (only when
# reasoning was asked for) the pieces in order, reasoning as ReasoningChunk.
Feed = Union[str, None, List[str]]


class ChunkParser:
    """Reads v1 chat-completion chunks and keeps the stream's state on ``target``.

    ``target`` gets public fields only: ``finish_reason``, ``usage``,
    ``model``, ``created``, ``function_call``, ``functions_state_id`` and
    ``reasoning`` (the ``reasoning_content`` so far) as they arrive; what the
    parser remembers between events (function arguments in fragments) stays here.

    ``target.emit_reasoning``: when set (by ``iter_events()``), an event that
    carries reasoning makes :meth:`feed` return a list of pieces, the reasoning
    as a :class:`ReasoningChunk` first; otherwise reasoning is only recorded
    (read from the target, so nothing needs to reach back to the parser).
    """

    __slots__ = ("target", "done", "events", "arguments_text")

    def __init__(self, target: Any) -> None:
        self.target = target
        self.done = False  # [DONE] seen
        self.events = 0
        self.arguments_text = ""

    @property
    def emit_reasoning(self) -> bool:
        return bool(getattr(self.target, "emit_reasoning", False))

    @property
    def complete(self) -> bool:
        """The stream ended properly: ``[DONE]`` or a finish reason arrived."""
        return self.done or self.target.finish_reason is not None

    def feed(self, data: str) -> Feed:
        """Take one event's data; return its text (or ``None``).

        Raises:
            APIError: the event is an error object.
            StreamError: the event is not a JSON object.
        """
        self.events += 1
        if data == DONE:
            self.done = True
            return None
        chunk, text = self.decode(data)
        if text is not MISS:
            return text  # type: ignore[no-any-return]  # a str or None: common() returns no other
        choices = chunk.get("choices")
        if choices is None:
            raise_if_error(chunk)
            return None  # an object we do not know (a future keep-alive, say): skip it
        return self._choices(chunk, choices)

    def decode(self, data: str) -> Tuple[Dict[str, Any], Any]:
        """An event's JSON object, and its text when it has the common shape (else :data:`MISS`).

        Raises:
            StreamError: the data is not JSON, or not an object.
        """
        try:
            obj = _loads(data)
        except ValueError:
            raise StreamError(f"malformed event #{self.events} in the stream: {scrub(data[:4096])[:80]!r}") from None
        if self.target.model is not None:  # after the first event, which names the model
            text = self.common(obj)
            if text is not MISS:
                return obj, text
        if not isinstance(obj, dict):
            raise StreamError(f"event #{self.events} is not a JSON object: {scrub(data[:4096])[:80]!r}")
        return obj, MISS

    @staticmethod
    def common(chunk: Any) -> Any:
        """The text of an event in the common shape, or :data:`MISS` (then the long way decides).

        ``{"choices": [{"delta": {"content": "..."}, "index": 0}], ...}`` without
        usage: what :meth:`feed` would return for it, in fewer steps.
        """
        if type(chunk) is dict and "usage" not in chunk:
            choices = chunk.get("choices")
            if type(choices) is list and len(choices) == 1:
                choice = choices[0]
                if type(choice) is dict and len(choice) == 2 and choice.get("index", 1) == 0:
                    delta = choice.get("delta")
                    if type(delta) is dict and len(delta) == 1:
                        content = delta.get("content")
                        if type(content) is str:
                            return content or None
        return MISS

    def _choices(self, chunk: Dict[str, Any], choices: Any) -> Feed:
        target = self.target
        if "usage" in chunk and chunk["usage"]:
            target.usage = chunk["usage"]
        if target.model is None:
            target.model = chunk.get("model")
            target.created = chunk.get("created")
        if not isinstance(choices, list):
            raise StreamError(f"event #{self.events} has malformed choices")
        text = None
        reasoning = None
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # with n > 1 the first choice is the stream's text
            delta = choice.get("delta") or {}
            if choice.get("finish_reason"):
                target.finish_reason = choice["finish_reason"]
            if "functions_state_id" in delta or "functions_state_id" in choice:
                target.functions_state_id = delta.get("functions_state_id") or choice.get("functions_state_id")
            if delta.get("function_call"):
                target.function_call = self.merge_function_call(target.function_call, delta["function_call"])
            content = delta.get("content")
            if content and isinstance(content, str):
                text = content
            thought = delta.get("reasoning_content")
            if thought and isinstance(thought, str):
                target.reasoning += thought
                reasoning = thought
        return pieces(text, reasoning, self.emit_reasoning)

    def merge_function_call(self, call: Optional[Dict[str, Any]], part: Any) -> Optional[Dict[str, Any]]:
        """``call`` with the fragment ``part`` merged in (a new dict).

        GigaChat sends the whole call in one delta with ``arguments`` as an
        object. OpenAI-style servers send ``arguments`` as JSON text in
        fragments: join the fragments (on the parser) and decode once they parse.
        """
        if not isinstance(part, dict):
            return call
        merged = dict(call or {})
        for key, value in part.items():
            if value is None:
                continue
            if key == "arguments" and isinstance(value, str):
                self.arguments_text += value
                try:
                    merged["arguments"] = json.loads(self.arguments_text)
                except ValueError:
                    merged["arguments"] = self.arguments_text
            else:
                merged[key] = value
        return merged


def pieces(text: Optional[str], reasoning: Optional[str], emit_reasoning: bool) -> Feed:
    """What :meth:`ChunkParser.feed` returns for an event with ``text`` and ``reasoning``."""
    if reasoning is None or not emit_reasoning:
        return text
    return [ReasoningChunk(reasoning)] if text is None else [ReasoningChunk(reasoning), text]


def raise_if_error(chunk: Dict[str, Any]) -> None:
    """Raise :class:`APIError` when an event is an error object (``status``/``message``/``error``)."""
    if "status" in chunk or "message" in chunk or "error" in chunk:
        status = chunk.get("status")
        raise APIError(
            server_message(chunk, "error inside the stream"),
            status_code=status if isinstance(status, int) else None,
        )
