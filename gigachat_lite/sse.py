"""Bytes -> server-sent events -> chat chunks.

Network reads are rejoined into whole events before decoding
(``Response.iter_lines()`` would split a CRLF straddling two reads, and
decoding first would split lines on U+2028 inside JSON). A fast path in
:func:`iter_event_data` takes the framings GigaChat sends, ``data: {json}\n\n``
(v1) and ``event: name\ndata: {json}\n\n`` (v2), straight from the bytes; at
the first event that looks any different (CR line ends, comments, other
fields, multi-line data, invalid UTF-8, a cut event) the rest, in the same
reads, goes to :class:`~.sse_limits.BoundedSSEClient`: sseclient-py's rules in
linear time under ``max_event_size``. The events are the same either way
(``tests/test_streaming_fastpath.py`` checks it on arbitrary input and
splits). :class:`ChunkParser` turns an event's data into the text to yield.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Dict, Iterable, Iterator, List, Optional, Union

from .errors import APIError, StreamError
from .redact import scrub, server_message
from .sse_limits import DEFAULT_MAX_EVENT_SIZE, BoundedSSEClient, too_large
from .reasoning import ReasoningChunk

__all__ = ["iter_event_data", "ChunkParser", "DONE", "Feed", "pieces", "raise_if_error"]

DONE = "[DONE]"
_loads = json.loads

# What a parser's feed() returns for one event: its text, nothing, or (only when
# reasoning was asked for) the pieces in order, reasoning as ReasoningChunk.
Feed = Union[str, None, List[str]]


def iter_event_data(chunks: Iterable[bytes], limit: int = DEFAULT_MAX_EVENT_SIZE) -> Iterator[str]:
    """The ``data`` of each event in a byte stream (multi-line data joined with ``\\n``).

    Exactly what sseclient-py's ``SSEClient(chunks).events()`` gives, read for
    read; the common framing is parsed here, anything else by sseclient-py's
    rules (:mod:`.sse_limits`). An event longer than ``limit`` bytes is a
    :class:`StreamError`, raised before it is all held.
    """
    chunks = iter(chunks)
    buffer = b""
    cuts: List[int] = []  # offsets in buffer where a network read began (besides 0)
    held: List[bytes] = []  # reads inside one long line, joined once the line ends (linear time)
    held_size = 0
    start = 0
    for chunk in chunks:
        # A read holding exactly one event, nothing pending: what a chunked stream gives
        # (one chunk per event). The same result as the loop below, in fewer steps:
        # one line, or "event: " and one "data: " line, then the blank line, no CR.
        if not buffer and chunk[-2:] == b"\n\n" and b"\r" not in chunk:
            end = len(chunk) - 2
            first = chunk.find(b"\n")
            if first == end:
                data_at = 0 if chunk.startswith(b"data: ") else -1
            elif (
                chunk.startswith(b"event: ")
                and chunk.find(b"\n", first + 1) == end
                and chunk.startswith(b"data: ", first + 1)
                and (chunk.isascii() or _decodes(chunk[7:first]))  # sseclient-py decodes the name too
            ):
                data_at = first + 1
            else:
                data_at = -1
            if data_at >= 0:
                try:
                    whole: Optional[str] = chunk[data_at + 6 : end].decode("utf-8")
                except UnicodeDecodeError:
                    whole = None  # the loop below hands it to sseclient-py, which raises
                if whole is not None:
                    yield whole
                    continue
        if buffer:
            cuts.append(len(buffer) + held_size)
            if buffer[-1] != 10 and b"\n" not in chunk:  # the line under way goes on: nothing to parse yet
                held.append(chunk)
                held_size += len(chunk)
                if len(buffer) + held_size > limit:
                    raise too_large(limit)
                continue
            buffer = b"".join((buffer, *held, chunk)) if held else buffer + chunk
            held, held_size = [], 0
        else:
            buffer = chunk
        has_cr = b"\r" in chunk or (cuts and b"\r" in buffer)
        ascii_only = buffer.isascii()  # then every event name decodes: no per-name check
        size = len(buffer)
        start = 0
        find, startswith = buffer.find, buffer.startswith
        while True:
            end = find(b"\n", start)
            if end < 0 or end + 1 >= size:
                break  # no whole line yet, or cannot tell a blank line follows
            if buffer[end + 1] != 10:  # a second line in the event: v2's "event: name" first, or anything else
                if not startswith(b"event: ", start):
                    yield from _delegate(buffer, start, cuts, chunks, limit)
                    return
                name_end, data_at = end, end + 1
                end = find(b"\n", data_at)
                if end < 0 or end + 1 >= size:
                    break  # the data line is not all here yet
                if (
                    buffer[end + 1] != 10  # a third line: multi-line data, id, ...
                    or not startswith(b"data: ", data_at)
                    or (has_cr and find(b"\r", start, end) >= 0)
                    or not (ascii_only or _decodes(buffer[start + 7 : name_end]))  # sseclient-py decodes it too
                ):
                    yield from _delegate(buffer, start, cuts, chunks, limit)
                    return
            else:
                data_at = start
                if not startswith(b"data: ", start) or (has_cr and find(b"\r", start, end) >= 0):
                    # a comment, another field, "data:" without a space, or CR line endings
                    yield from _delegate(buffer, start, cuts, chunks, limit)
                    return
            if end - start > limit:
                raise too_large(limit)
            try:
                text = buffer[data_at + 6 : end].decode("utf-8")
            except UnicodeDecodeError:  # sseclient-py raises it, with its own message
                yield from _delegate(buffer, start, cuts, chunks, limit)
                return
            start = end + 2
            yield text
        if start:
            buffer = buffer[start:]
            if cuts:
                cuts = [cut - start for cut in cuts if cut > start]
        if len(buffer) > limit:
            raise too_large(limit)
    if held:
        buffer = b"".join((buffer, *held))
    if buffer:  # the stream ended inside an event: sseclient-py's rules dispatch what there is
        yield from _delegate(buffer, 0, cuts, iter(()), limit)


def _decodes(line: bytes) -> bool:
    if line.isascii():
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _delegate(buffer: bytes, start: int, cuts: List[int], rest: Iterator[bytes], limit: int) -> Iterator[str]:
    """sseclient-py from ``buffer[start:]`` on, cut into the original reads, then ``rest``.

    ``start`` is 0 or just after a blank line, where sseclient-py has nothing
    pending, so it parses the rest exactly as it would have from the beginning.
    """
    pieces = []
    for cut in cuts:
        if cut > start:
            pieces.append(buffer[start:cut])
            start = cut
    pieces.append(buffer[start:])
    yield from BoundedSSEClient(itertools.chain(pieces, rest), limit).iter_data()


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
        try:
            chunk = _loads(data)
        except ValueError:
            raise StreamError(f"malformed event #{self.events} in the stream: {scrub(data[:4096])[:80]!r}") from None
        # The common event, {"choices": [{"delta": {"content": "..."}, "index": 0}], ...} after the
        # first (which set the model), no usage: exactly what _choices would do, in fewer steps.
        if type(chunk) is dict and "usage" not in chunk and self.target.model is not None:
            choices = chunk.get("choices")
            if type(choices) is list and len(choices) == 1:
                choice = choices[0]
                if type(choice) is dict and len(choice) == 2 and choice.get("index", 1) == 0:
                    delta = choice.get("delta")
                    if type(delta) is dict and len(delta) == 1:
                        content = delta.get("content")
                        if type(content) is str:
                            return content or None
        if not isinstance(chunk, dict):
            raise StreamError(f"event #{self.events} is not a JSON object: {scrub(data[:4096])[:80]!r}")
        choices = chunk.get("choices")
        if choices is None:
            raise_if_error(chunk)
            return None  # an object we do not know (a future keep-alive, say): skip it
        return self._choices(chunk, choices)

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
