"""sseclient-py's parser with a bound on each event's size, in linear time.

``SSEClient._read`` joins an event's lines with ``data += line`` and
``events()`` joins its data lines with ``+=``: quadratic in the event's size
(one 50 MB line took 19 s and +414 MB; 4 MiB of one-letter ``data`` lines,
92 s). :class:`BoundedSSEClient` keeps sseclient-py's rules (lines split on
CR, LF or CRLF, an event ends at a blank line, each line decoded, comments
and unknown fields skipped, one leading space dropped, data lines joined with
``\\n``, events without data not dispatched; ``tests/test_sse_fastpath.py``
checks it against sseclient-py itself) but collects pieces in lists, and
fails with :class:`StreamError` as soon as an event outgrows the limit.
"""

from __future__ import annotations

from typing import Iterable, Iterator, List

from sseclient import SSEClient

from .errors import StreamError
from .settings_checks import DEFAULT_MAX_EVENT_SIZE

__all__ = ["BoundedSSEClient", "DEFAULT_MAX_EVENT_SIZE", "too_large"]

_ENDS = (b"\r\r", b"\n\n", b"\r\n\r\n")


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
            for raw in chunk.splitlines():
                line = raw.decode("utf-8")  # sseclient-py's default char_enc
                if not line.strip() or line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                if field == "data":
                    values.append(value[1:] if value.startswith(" ") else value)
            if values:
                yield "\n".join(values)
