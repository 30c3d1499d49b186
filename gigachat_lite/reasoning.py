"""Reasoning text kept apart from the answer: :class:`ReasoningChunk` and the ``iter_events`` mixin.

A reasoning model thinks before it answers; GigaChat sends that text beside
the answer (v1: ``reasoning_content``; v2: a reasoning part). Iterating a
reply or a stream yields the answer only, always; ``reasoning`` holds the
reasoning received so far, and :meth:`ReasoningEvents.iter_events` /
:meth:`ReasoningEvents.iter_reasoning` hand it out as it arrives.
"""

from __future__ import annotations

from typing import Any, Iterator, Tuple

__all__ = ["ReasoningChunk", "ReasoningEvents", "EventView", "Event"]

Event = Tuple[str, str]  # ("reasoning" | "text", the piece)


class ReasoningChunk(str):
    """A piece of reasoning text; parsers return it only to ``iter_events()``."""

    __slots__ = ()


class ReasoningEvents:
    """``iter_events()`` and ``iter_reasoning()`` for replies and streams.

    A stream sets ``_parser`` (whose ``emit_reasoning`` makes it hand out
    reasoning pieces) and iterates ``_chunks``; a whole reply has neither and
    gives its reasoning, then its text, at once.
    """

    reasoning: str

    @property
    def text(self) -> str:
        """The answer received so far (the classes using this mixin define it)."""
        raise NotImplementedError

    def iter_events(self) -> Iterator[Event]:
        """Yield ``("reasoning", piece)`` and ``("text", piece)`` in the order they arrived.

        The text pieces are the same ``str`` chunks that iterating yields (and
        they accumulate in ``text`` as usual); reasoning never appears among them.
        """
        chunks = self.__dict__.get("_chunks")
        if chunks is None:  # a whole reply
            if self.reasoning:
                yield "reasoning", self.reasoning
            if self.text:
                yield "text", self.text
            return
        parser = _StreamParser(self)
        parser.set(True)
        try:
            for piece in chunks:
                yield ("reasoning" if piece.__class__ is ReasoningChunk else "text"), str(piece)
        finally:
            parser.set(False)

    def iter_reasoning(self) -> Iterator[str]:
        """Yield the reasoning pieces as they arrive; the answer still fills ``text``.

        After the loop the stream has been read to the end: ``text``,
        ``finish_reason`` and ``usage`` are complete.
        """
        for kind, piece in self.iter_events():
            if kind == "reasoning":
                yield piece


class EventView:
    """A stream seen through :meth:`ReasoningEvents.iter_events`; every other attribute is the stream's.

    What ``aio.chat_events()`` runs in its thread: the events are iterated,
    ``finish_reason``, ``usage``, ``reasoning``, ``close()``, ``abort()``
    and the rest are the stream's own.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._events: Iterator[Event] = stream.iter_events()

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["stream"], name)


class _StreamParser:
    """Flips ``emit_reasoning`` on the parser of a stream that may not have started yet."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def set(self, value: bool) -> None:
        # The parser is made when reading starts; the stream reads the flag from here then.
        self.stream.__dict__["_emit_reasoning"] = value
        parser = self.stream.__dict__.get("_parser")
        if parser is not None:
            parser.emit_reasoning = value
