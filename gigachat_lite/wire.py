"""HTTP chunks -> SSE events -> chat text in one pass over the socket's buffer: the streaming hot path.

A chunked GigaChat stream sends one event per HTTP chunk. Read the usual
way, each event costs a pass through http.client's chunk reader (five
Python calls), a pass through :func:`.sse.iter_event_data`, and ``json.loads``
(three more Python calls and two regex matches) inside the parser's ``feed``.
Here chunks are taken straight from the buffered socket reader:
:meth:`io.BufferedReader.peek` shows what has arrived without consuming it.
A chunk not all here yet is read whole (http.client reads its size line,
this loop the rest). A chunk that holds exactly one event in the common
framing is decoded in this loop, and its JSON is read by the C scanner under
``json.loads`` and, when it has the common shape, turned into text by the
parser's ``common``. Whatever looks any different (a chunk extension, a
chunk over ``max_event_size``, two events or half an event in a chunk, CR
line ends, JSON of another shape) goes the usual way from that very byte,
so the result is the usual path's (``tests/test_streaming_wire.py`` checks
it on arbitrary input, splits and buffer sizes):

* framing: the rest of the stream goes through http.client's reader and
  :func:`.sse.iter_event_data` (starting with the chunk in hand, if taken);
* JSON of another shape: that event goes to the parser's ``feed``.

Chunk sizes are read as http.client reads them (``int(line, 16)``, the 2
bytes after the data tossed unread). One difference, in time only: an event
is handed out once its whole chunk has arrived, where http.client's
``read1`` would hand out a chunk's first bytes early; GigaChat writes each
chunk at once.
"""

from __future__ import annotations

import http.client
import io
import itertools
import json
from typing import Any, Iterator, Optional

from .sse import iter_event_data, name_decodes
from .stream_v1 import MISS, ChunkParser, Feed
from .body import passthrough, read_chunks

__all__ = ["socket_buffer", "texts"]

# json.loads is this C scanner behind three Python calls and two regex matches for
# surrounding whitespace; an event's data has none. Anything the scanner does not
# take whole (whitespace around it, invalid JSON) goes to feed(), and so json.loads.
_scan_once = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]


def socket_buffer(raw: Any) -> Optional[io.BufferedReader]:
    """The buffered socket reader under a chunked, unencoded body at a chunk boundary, or ``None``."""
    fp = passthrough(raw)
    if fp is None or not fp.chunked or fp.chunk_left is not None:  # chunk_left None: the next byte starts a chunk
        return None
    buffer = getattr(fp, "fp", None)
    return buffer if isinstance(buffer, io.BufferedReader) else None


def texts(raw: Any, buffer: io.BufferedReader, parser: ChunkParser, limit: int) -> Iterator[Feed]:
    """What ``parser.feed`` returns for each event of ``raw``'s body, read from ``buffer`` in one pass.

    Yields ``None`` for events without text too, so that the caller sees
    every event (it stops at ``parser.done``).
    """
    response: http.client.HTTPResponse = raw._fp
    peek, consume, feed, common, state, scan = buffer.peek, buffer.read, parser.feed, parser.common, parser.target, _scan_once
    pending = None  # a chunk read here that is not one clean event: the usual path starts with it
    while True:
        block = peek()
        size_end = block.find(b"\n") + 1
        size = 0
        if size_end:
            line = block[:size_end]
            if b";" not in line:  # a chunk extension: http.client strips it
                try:
                    size = int(line, 16)  # as http.client parses it
                except ValueError:
                    pass
        end = size_end + size
        if 0 < size <= limit and end + 2 <= len(block):
            event = block[size_end:end]  # the whole chunk is here: consumed below if it is one clean event
            whole = end + 2  # with the 2 bytes after it, which http.client tosses unread
        else:
            # Not all here (or the last chunk, or a size to refuse): http.client reads the size
            # line, as it would have (read1(0) stops there), and this loop takes the chunk whole.
            response.read1(0)
            left: Optional[int] = response.chunk_left
            if left is None or left > limit:
                break  # the body's end (http.client has closed it), or an event to refuse the usual way
            chunk = consume(left + 2)
            response.chunk_left = None  # past the chunk, as after http.client's toss
            event = chunk[:left]
            whole = 0
        # One event, nothing else: "data: ...\n\n" (v1, and v2's unnamed events) or
        # "event: name\ndata: ...\n\n" (v2); no CR anywhere, so no other line ending.
        size = len(event)  # less than announced when the body was cut
        first = event.find(b"\n")
        if event[-2:] != b"\n\n" or b"\r" in event:
            data_at = -1
        elif first == size - 2:
            data_at = 6 if event.startswith(b"data: ") else -1
        elif (
            event.startswith(b"event: ")
            and event.find(b"\n", first + 1) == size - 2
            and event.startswith(b"data: ", first + 1)
            and (event.isascii() or name_decodes(event[7:first]))  # sseclient-py decodes the name too
        ):
            data_at = first + 7
        else:
            data_at = -1
        data = None
        if data_at > 0:
            try:
                data = event[data_at:-2].decode("utf-8")
            except UnicodeDecodeError:
                pass  # the usual path raises it, as sseclient-py would
        if data is None:
            if not whole:
                pending = event
            break
        if whole:
            consume(whole)
        text = MISS
        if state.model is not None:  # the first event (which names the model) goes the long way
            try:
                obj, stop = scan(data, 0)
            except (StopIteration, ValueError):
                stop = -1  # not JSON: feed() raises it with json.loads' message
            if stop == len(data):
                text = common(obj)
        if text is MISS:
            yield feed(data)
        else:
            parser.events += 1
            yield text
    # The usual path, from the next unread byte on (http.client is at a chunk boundary).
    reads = read_chunks(raw)
    for data in iter_event_data(reads if pending is None else itertools.chain((pending,), reads), limit):
        yield feed(data)
