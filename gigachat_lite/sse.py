"""Bytes -> server-sent events -> chat chunks.

The raw bytes of the response go to sseclient-py, which rejoins network reads
into whole events before decoding (``Response.iter_lines()`` would split a CRLF
that straddles two reads into two events, and decoding first would split
lines on U+2028 inside JSON). :class:`ChunkParser` turns each event's data
into the text to yield and records ``finish_reason``, ``usage``, the model and
any function call on a target object.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, Optional

from sseclient import SSEClient

from .errors import APIError, StreamError
from .failures import server_message

__all__ = ["iter_event_data", "ChunkParser", "DONE"]

DONE = "[DONE]"


def iter_event_data(chunks: Iterable[bytes]) -> Iterator[str]:
    """The ``data`` of each event in a byte stream (multi-line data joined with ``\\n``)."""
    for event in SSEClient(chunks).events():
        yield event.data


class ChunkParser:
    """Reads chat-completion chunks and keeps the stream's state on ``target``.

    ``target`` gets ``finish_reason``, ``usage``, ``model``, ``created``,
    ``function_call`` and ``functions_state_id`` as they arrive.
    """

    __slots__ = ("target", "done", "events")

    def __init__(self, target: Any) -> None:
        self.target = target
        self.done = False  # [DONE] seen
        self.events = 0

    @property
    def complete(self) -> bool:
        """The stream ended properly: ``[DONE]`` or a finish reason arrived."""
        return self.done or self.target.finish_reason is not None

    def feed(self, data: str) -> Optional[str]:
        """Take one event's data; return its text (or ``None``).

        Raises:
            APIError: the event is an error object.
            StreamError: the event is not a JSON object.
        """
        self.events += 1
        if data == DONE:
            self.done = True
            return None
        try:
            chunk = json.loads(data)
        except ValueError:
            raise StreamError(f"malformed event #{self.events} in the stream: {data[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise StreamError(f"event #{self.events} is not a JSON object: {data[:80]!r}")
        choices = chunk.get("choices")
        if choices is None:
            if "status" in chunk or "message" in chunk or "error" in chunk:
                status = chunk.get("status")
                raise APIError(
                    server_message(chunk, "error inside the stream"),
                    status_code=status if isinstance(status, int) else None,
                )
            return None  # an object we do not know (a future keep-alive, say): skip it
        return self._choices(chunk, choices)

    def _choices(self, chunk: Dict[str, Any], choices: Any) -> Optional[str]:
        target = self.target
        if "usage" in chunk and chunk["usage"]:
            target.usage = chunk["usage"]
        if target.model is None:
            target.model = chunk.get("model")
            target.created = chunk.get("created")
        if not isinstance(choices, list):
            raise StreamError(f"event #{self.events} has malformed choices")
        text = None
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # with n > 1 the first choice is the stream's text
            delta = choice.get("delta") or {}
            if choice.get("finish_reason"):
                target.finish_reason = choice["finish_reason"]
            if "functions_state_id" in delta or "functions_state_id" in choice:
                target.functions_state_id = delta.get("functions_state_id") or choice.get("functions_state_id")
            if delta.get("function_call"):
                _merge_function_call(target, delta["function_call"])
            content = delta.get("content")
            if content and isinstance(content, str):
                text = content
        return text


def _merge_function_call(target: Any, part: Any) -> None:
    # GigaChat sends the whole call in one delta with ``arguments`` as an object;
    # a JSON string (as OpenAI-style servers send) is decoded when it parses.
    if not isinstance(part, dict):
        return
    call = dict(target.function_call or {})
    call.update({k: v for k, v in part.items() if v is not None})
    if isinstance(call.get("arguments"), str):
        try:
            call["arguments"] = json.loads(call["arguments"])
        except ValueError:
            pass
    target.function_call = call
