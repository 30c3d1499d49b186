"""A streamed body read straight from the socket, and given back to the pool or closed.

``ChatStream`` (:mod:`.stream`) reads through these: http.client's ``read1``
when urllib3 would only pass the bytes through, urllib3's when a body is
compressed; a length check for a ``Content-Length`` body that ended early; the
drain after the last event that lets the connection be reused; and a close that
takes no lock, for finalisers.
"""

from __future__ import annotations

import functools
import http.client
from typing import Any, Callable, Iterator, Optional

import requests

__all__ = ["body_read1", "passthrough", "read_chunks", "check_length", "drain", "close_socket", "release"]

_READ_SIZE = 65536
_DRAIN_LIMIT = 65536


def body_read1(raw: Any) -> Optional[Callable[[int], bytes]]:
    """``read1`` of the body: http.client's own when urllib3 would only pass the bytes through.

    read1 returns whatever has arrived (up to the size): a stream sent without
    chunked encoding does not stall waiting for 64 KiB. urllib3's ``read1``
    costs a few microseconds a call on top of http.client's (error translation,
    decoder and length bookkeeping), and a chunked stream takes one call per
    event; with no content encoding to undo, http.client's is called directly
    and its errors are mapped by :func:`_read`.
    """
    fp = passthrough(raw)
    if fp is not None:
        return fp.read1
    read1: Optional[Callable[..., bytes]] = getattr(raw, "read1", None)  # None before urllib3 2.3
    if read1 is not None and getattr(raw, "headers", {}).get("content-encoding", "identity").lower() != "identity":
        # requests asks urllib3 for the raw bytes; a gzip/deflate body (some proxies
        # compress event streams) is decoded here, as iter_content() would.
        return functools.partial(read1, decode_content=True)
    return read1


def passthrough(raw: Any) -> Optional[http.client.HTTPResponse]:
    """http.client's response under urllib3's ``raw`` when urllib3 would only pass its bytes through, else ``None``."""
    fp = getattr(raw, "_fp", None)
    if (
        isinstance(fp, http.client.HTTPResponse)
        and getattr(raw, "_decoder", None) is None
        and not len(getattr(raw, "_decoded_buffer", b""))
        and raw.headers.get("content-encoding", "identity").lower() == "identity"
    ):
        return fp
    return None


def read_chunks(raw: Any) -> Iterator[bytes]:
    read = body_read1(raw)
    if read is None:  # urllib3 < 2.3
        return iter(raw.stream(_READ_SIZE, decode_content=True))
    # iter(callable, sentinel) runs in C: no generator frame between the socket and the parser.
    return iter(functools.partial(read, _READ_SIZE), b"")


def check_length(raw: Any) -> None:
    """Raise when a ``Content-Length`` body ended early (http.client's read1 just returns b"")."""
    fp = getattr(raw, "_fp", None)
    if isinstance(fp, http.client.HTTPResponse) and fp.length:
        raise http.client.IncompleteRead(b"", fp.length)


def drain(raw: Any) -> bool:
    """After ``[DONE]``: read the end of the body so the connection can be reused."""
    read = body_read1(raw) or raw.read
    left = _DRAIN_LIMIT
    while left > 0:
        data = read(left)
        if not data:
            return True
        left -= len(data)
    return False


def close_socket(response: requests.Response) -> None:
    """Close the connection's socket without going near the pool (and so without a lock)."""
    try:
        response.raw.close()
    except Exception:
        pass


def release(response: requests.Response, *, reusable: bool) -> None:
    if reusable:
        response.raw.release_conn()  # fully read: back to the pool for the next call
    response.close()  # otherwise this closes the socket: a half-read body cannot be reused
