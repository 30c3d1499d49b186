"""Reading a v2 stream: named events, ``response.message.delta`` then ``response.message.done``.

The bytes -> events part is :mod:`.wire` (or :func:`.sse.iter_event_data`);
both know v2's ``event: name`` line. Each event's data says what it is: a delta has
``messages`` (parts, read by :func:`reply_v2.read_messages`), the done event
has ``finish_reason`` and ``usage``; there is no ``data: [DONE]``.
"""

from __future__ import annotations

from typing import Any

from .reply_v2 import read_header, read_messages
from .stream_v1 import MISS, ChunkParser, Feed, pieces, raise_if_error

__all__ = ["V2ChunkParser"]


class V2ChunkParser(ChunkParser):
    """:class:`.stream_v1.ChunkParser`'s interface for v2 events; the state goes on ``target`` as public fields."""

    __slots__ = ()

    @property
    def complete(self) -> bool:
        """The done event (or any event with a finish reason) arrived."""
        return self.target.finish_reason is not None

    @staticmethod
    def common(event: Any) -> Any:
        """The text of an event in the common shape, or :data:`~.stream_v1.MISS`.

        ``{"model", "created_at", "messages": [{"role": "assistant", "content":
        [{"text": "..."}]}]}``: what :meth:`feed` would return for it, in fewer steps.
        """
        if type(event) is dict and len(event) == 3 and "created_at" in event:
            messages = event.get("messages")
            if type(messages) is list and len(messages) == 1:
                message = messages[0]
                if type(message) is dict and len(message) == 2 and message.get("role") == "assistant":
                    content = message.get("content")
                    if type(content) is list and len(content) == 1:
                        part = content[0]
                        if type(part) is dict and len(part) == 1:
                            text = part.get("text")
                            if type(text) is str:
                                return text or None
        return MISS

    def feed(self, data: str) -> Feed:
        """Take one event's data; return its answer text (or ``None``).

        Raises:
            APIError: the event is an error object.
            StreamError: the event is not a JSON object.
        """
        self.events += 1
        event, text = self.decode(data)
        if text is not MISS:
            return text  # type: ignore[no-any-return]  # a str or None: common() returns no other
        if "messages" not in event and "finish_reason" not in event and "usage" not in event:
            raise_if_error(event)
            return None  # an event we do not know (a keep-alive, a tool's progress): skip it
        target = self.target
        read_header(target, event)
        texts, thoughts = read_messages(target, event, self.merge_function_call)
        if event.get("finish_reason"):
            self.done = True  # the done event: nothing follows it
        text = "".join(texts) or None
        return pieces(text, "".join(thoughts) or None, self.emit_reasoning)


