"""Secrets kept out of every message built from a server's words.

A server (or a proxy) may echo the request's ``Authorization`` header in an
error body; that text goes into exceptions, logs and reprs. :func:`scrub`
replaces every secret this process holds (the authorization keys and the
access tokens it has used, registered by :mod:`.auth` with :func:`remember`)
and any ``Basic ...``/``Bearer ...`` credential with ``***``.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Dict

__all__ = ["remember", "scrub", "server_message", "redact_response"]

_HELD: Dict[str, None] = {}  # insertion-ordered; dict operations are atomic under the GIL: no lock
_HELD_MAX = 256
_MIN_SECRET = 8  # shorter strings would scrub ordinary words; no real key or token is that short


@functools.lru_cache(maxsize=None)
def _credential() -> "re.Pattern[str]":
    # Compiled on first use (only a failure's message is scrubbed): 0.8 ms that
    # ``import gigachat_lite`` need not pay. 16 characters at least: "Bearer token
    # expired" is prose, not a credential.
    return re.compile(r"\b(Basic|Bearer)(\s+|%20|\+)[A-Za-z0-9._~+/=:%-]{16,}", re.IGNORECASE)


def remember(secret: str, *, min_length: int = _MIN_SECRET) -> None:
    """Add a key or token to the secrets :func:`scrub` removes (the oldest are forgotten after 256).

    ``min_length``: shorter values are not held (they would scrub ordinary
    words); passwords, which people keep short, are held from 4 characters.
    """
    if len(secret) < min_length or secret in _HELD:
        return
    _HELD[secret] = None
    while len(_HELD) > _HELD_MAX:
        try:
            del _HELD[next(iter(_HELD))]
        except (KeyError, StopIteration, RuntimeError):  # another thread got there first
            break


def scrub(text: str) -> str:
    """``text`` without any secret held and without ``Basic``/``Bearer`` credentials."""
    if not text:
        return text
    for secret in list(_HELD):
        if secret in text:
            text = text.replace(secret, "***")
    if "asic" in text or "earer" in text or "ASIC" in text or "EARER" in text:
        text = _credential().sub(lambda m: m.group(1) + " ***", text)
    return text


def server_message(payload: Any, fallback: str) -> str:
    """The human message of an error payload (``{"status", "message"}`` or ``{"code", "message"}``), scrubbed."""
    if isinstance(payload, dict):
        for key in ("message", "error_description", "detail"):
            if isinstance(payload.get(key), str) and payload[key]:
                return scrub(str(payload[key]))
        inner = payload.get("error")
        if isinstance(inner, dict):
            return server_message(inner, fallback)
        if isinstance(inner, str) and inner:
            return scrub(inner)
    return scrub(fallback)


def redact_response(response: Any, body: bytes) -> None:
    """Scrub what an error's ``response`` still shows: its requests' ``Authorization`` and its body.

    The exception carries the response, and the response its request: someone
    logging ``exc.response.request.headers`` or ``exc.response.text`` must not
    print a token or the key. The request was sent already (and any resend
    copied it first); ``body`` is what was read of the reply.
    """
    for item in [response, *getattr(response, "history", ())]:
        headers = getattr(getattr(item, "request", None), "headers", None)
        if headers is not None and "Authorization" in headers:
            headers["Authorization"] = "<redacted>"
    text = body.decode("utf-8", "replace")
    clean = scrub(text)
    response._content = body if clean == text else clean.encode("utf-8")
    response._content_consumed = True
