"""A whole reply's body, read within a size limit whatever its ``Content-Length`` says.

requests reads a reply it was not asked to stream into memory as it comes:
a hostile or broken server that declares ``Content-Length: 1000000000000000``
or never stops sending holds the caller until memory runs out. Every whole
reply (JSON replies, file contents, the OAuth reply) is read here instead,
streamed in blocks and stopped at ``limit`` bytes (``max_reply_size``), with
a declared length over the limit refused before a byte is read.
"""

from __future__ import annotations

from typing import Any

import requests

from ..errors import InvalidResponseError, translate

__all__ = ["read_body"]

_BLOCK = 65536


def read_body(response: requests.Response, limit: int, *, bundle: Any = None) -> bytes:
    """Read ``response``'s body (requested with ``stream=True``) and keep it as its ``content``; at most ``limit`` bytes.

    Raises:
        InvalidResponseError: the reply declares or sends more than ``limit`` bytes.
        TransportError (and subclasses): the body was cut or could not be read.
    """
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        response.close()
        raise InvalidResponseError(_too_large(response, f"declares {int(declared)} bytes"))
    blocks = []
    size = 0
    try:
        for block in response.iter_content(_BLOCK):
            size += len(block)
            if size > limit:
                response.close()
                raise InvalidResponseError(_too_large(response, f"sent more than {limit} bytes"))
            blocks.append(block)
    except requests.RequestException as exc:
        response.close()
        raise translate(exc, url=response.url or "", bundle=bundle, whole=True) from exc
    content = b"".join(blocks)
    # requests' own place for a body it has read: .content, .text and .json() serve it from here.
    response._content = content
    return content


def _too_large(response: requests.Response, what: str) -> str:
    return (
        f"the reply {what}, more than max_reply_size allows (raise it with max_reply_size= or GIGACHAT_MAX_REPLY_SIZE)"
        f" (request id {response.headers.get('x-request-id')})"
    )
