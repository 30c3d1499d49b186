"""urllib3 connections that send a request's head and its small body in one write.

urllib3 writes the head (request line and headers) and then the body: two TLS
records, two system calls, and the server reads the body with a second
``recv`` that may wait for it. A GigaChat call is a few hundred bytes of
JSON, so :class:`OneWriteHTTPSConnection` holds a small ``bytes`` body whose
length is declared (or text, sent as UTF-8 as urllib3 does) and sends it together with the head: the same bytes on the
wire, ~10 µs less client CPU and a shorter wait per small call (issue 14).
Streams, files, chunked and large bodies are sent as urllib3 sends them.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type

from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["OneWriteHTTPConnection", "OneWriteHTTPSConnection", "POOL_CLASSES"]

# Joining copies the body once: only worth it while that copy is cheap.
_MAX_HELD = 64 * 1024


class _OneWrite:
    _held: Optional[bytes] = None

    def request(self, method: str, url: str, body: Any = None, headers: Optional[Mapping[str, str]] = None, **kwargs: Any) -> None:
        if type(body) is str:
            body = body.encode("utf-8")  # what urllib3 would send (body_to_chunks)
        if (
            type(body) is bytes
            and 0 < len(body) <= _MAX_HELD
            and not kwargs.get("chunked")
            and headers is not None
            and _declares_length(headers)  # so no header urllib3 derives from the body is left out
        ):
            # With no body, urllib3 writes the same head (the length is given); send() adds the body to it.
            self._held = body
            try:
                super().request(method, url, None, headers, **kwargs)  # type: ignore[misc]
            finally:
                self._held = None
            return
        super().request(method, url, body, headers, **kwargs)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        held = self._held
        if held is not None:
            self._held = None
            data = bytes(data) + held
        super().send(data)  # type: ignore[misc]


def _declares_length(headers: Mapping[str, str]) -> bool:
    if isinstance(headers, CaseInsensitiveDict):  # what requests passes: one lookup, not a walk over the headers
        return "content-length" in headers
    return any(name.lower() == "content-length" for name in headers)


class OneWriteHTTPConnection(_OneWrite, HTTPConnection):  # type: ignore[misc]  # request() takes urllib3's keywords through **kwargs
    pass


class OneWriteHTTPSConnection(_OneWrite, HTTPSConnection):  # type: ignore[misc]
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = OneWriteHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = OneWriteHTTPSConnection


#: For ``PoolManager.pool_classes_by_scheme``.
POOL_CLASSES: Dict[str, Type[HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}
