"""Bytes -> server-sent events, each event's ``data`` as ``str``, bounded in size and linear in time.

Network reads are rejoined into whole events before decoding
(``Response.iter_lines()`` would split a CRLF straddling two reads, and
decoding first would split lines on U+2028 inside JSON). A fast path in
:func:`iter_event_data` takes the framings GigaChat sends, ``data: {json}\n\n``
(v1) and ``event: name\ndata: {json}\n\n`` (v2), straight from the bytes; at
the first event that looks any different (CR line ends, comments, other
fields, multi-line data, invalid UTF-8, a cut event) the rest, in the same
reads, goes to :class:`BoundedSSEClient`: sseclient-py's rules in linear time
under ``max_event_size``. The events are the same either way (the tests check
it on arbitrary input and splits against sseclient-py itself).

sseclient-py's own ``SSEClient._read`` joins an event's lines with ``data +=
line`` and ``events()`` joins its data lines with ``+=``: quadratic in the
event's size (one 50 MB line took 19 s and +414 MB; 4 MiB of one-letter
``data`` lines, 92 s). :class:`BoundedSSEClient` keeps its rules (lines split
on CR, LF or CRLF, an event ends at a blank line, each line decoded, comments
and unknown fields skipped, one leading space dropped, data lines joined with
``\n``, events without data not dispatched) but collects pieces in lists, and
fails with :class:`StreamError` as soon as an event outgrows the limit. A
UTF-8 byte-order mark before the first event is dropped, as the SSE standard
says (sseclient-py would read ``\ufeffdata`` as an unknown field and lose the
first event).
"""

from __future__ import annotations

import itertools
from typing import Iterable, Iterator, List, Optional

from sseclient import SSEClient

from .config import DEFAULT_MAX_EVENT_SIZE
from .errors import StreamError

__all__ = ["iter_event_data", "ErrorEventData", "BoundedSSEClient", "too_large"]

_ENDS = (b"\r\r", b"\n\n", b"\r\n\r\n")
_BOM = b"\xef\xbb\xbf"


class ErrorEventData(str):
    """The data of an event named ``error`` (``event: error``): the parsers raise it whatever it says."""

    __slots__ = ()


def iter_event_data(chunks: Iterable[bytes], limit: int = DEFAULT_MAX_EVENT_SIZE) -> Iterator[str]:
    """The ``data`` of each event in a byte stream (multi-line data joined with ``\\n``).

    Exactly what sseclient-py's ``SSEClient(chunks).events()`` gives, read for
    read; the common framing is parsed here, anything else by sseclient-py's
    rules (:class:`BoundedSSEClient`). An event longer than ``limit`` bytes is a
    :class:`StreamError`, raised before it is all held.
    """
    chunks = _without_bom(iter(chunks))
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
                and (chunk.isascii() or _name_decodes(chunk[7:first]))  # sseclient-py decodes the name too
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
                    yield ErrorEventData(whole) if data_at and chunk[7:first] == b"error" else whole
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
                    or not (ascii_only or _name_decodes(buffer[start + 7 : name_end]))  # sseclient-py decodes it too
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
            if data_at != start and buffer[start + 7 : data_at - 1] == b"error":
                text = ErrorEventData(text)
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


def _name_decodes(line: bytes) -> bool:
    """An ``event:`` name sseclient-py can decode (it decodes every line, names included)."""
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


def _without_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` with a UTF-8 byte-order mark at the very start of the stream removed (C-level chaining after the head)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(_BOM) or not _BOM.startswith(head):
            break
    if head.startswith(_BOM):
        head = head[len(_BOM):]
    return itertools.chain((head,) if head else (), chunks)


def too_large(limit: int) -> StreamError:
    """The error for an event (or line) longer than ``limit`` bytes, naming the setting."""
    return StreamError(
        f"an event in the stream is larger than the limit of {limit} bytes "
        "(raise it with max_event_size= or GIGACHAT_MAX_EVENT_SIZE)"
    )


class BoundedSSEClient(SSEClient):
    """``SSEClient(chunks).events()``'s data, in linear time, each event at most ``limit`` bytes."""

    def __init__(self, chunks: Iterable[bytes], limit: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._chunks = iter(chunks)
        super().__init__(self._chunks)
        self._limit = limit

    def _read(self) -> Iterator[bytes]:
        parts: List[bytes] = []
        size = 0
        tail = b""  # the event's last few bytes: enough to see its end, as data.endswith() would
        for chunk in self._chunks:
            for line in chunk.splitlines(True):
                parts.append(line)
                size += len(line)
                tail = (tail + line)[-4:] if len(line) < 4 else line[-4:]
                if size > self._limit:
                    raise too_large(self._limit)
                if tail.endswith(_ENDS):
                    yield b"".join(parts)
                    parts, size, tail = [], 0, b""
        if parts:
            yield b"".join(parts)

    def iter_data(self) -> Iterator[str]:
        """Each dispatched event's ``data``, exactly as ``events()`` would give it."""
        for chunk in self._read():
            values: List[str] = []
            name = ""
            for raw in chunk.splitlines():
                line = raw.decode("utf-8")  # sseclient-py's default char_enc
                if not line.strip() or line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    values.append(value)
                elif field == "event":
                    name = value
            if values:
                data = "\n".join(values)
                yield ErrorEventData(data) if name == "error" else data
