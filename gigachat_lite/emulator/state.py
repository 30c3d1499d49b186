"""The emulator's bookkeeping: recorded requests, issued tokens, and per-key counters.

Every counter is changed under one lock, so the figures stay exact however many
connection threads update them at once.
"""

import json
import secrets
import threading
import time
from typing import Any, Dict, Optional, Tuple


class RecordedRequest:
    """One request as the emulator received it.

    ``headers`` is the parsed, case-insensitive header mapping; ``json`` is the parsed
    body or ``None``. The repr leaves headers out because they carry credentials.
    """

    __slots__ = ("method", "path", "headers", "body", "json")

    def __init__(self, method: str, path: str, headers: Any, body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        try:
            self.json: Any = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            self.json = None

    def __repr__(self) -> str:
        return "<RecordedRequest %s %s (%d bytes)>" % (self.method, self.path, len(self.body))


def basic_key(headers: Any) -> Optional[str]:
    """The authorization key of a ``Basic`` header, or ``None``."""
    scheme, _, key = (headers.get("Authorization") or "").partition(" ")
    return key.strip() if scheme.lower() == "basic" else None


def bearer_token(headers: Any) -> Optional[str]:
    """The token of a ``Bearer`` header, or ``None``."""
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class Ledger:
    """Tokens (token -> key, expiry) and per-key counts: OAuth calls, in flight, 429s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: Dict[str, Tuple[str, float]] = {}
        self._oauth: Dict[Optional[str], int] = {}
        self._in_flight: Dict[str, int] = {}
        self._peak: Dict[str, int] = {}
        self._refused: Dict[str, int] = {}

    def issue(self, key: str, ttl: float) -> Tuple[str, int]:
        """Make a token for ``key`` valid ``ttl`` seconds; return it and ``expires_at`` in ms."""
        token = secrets.token_urlsafe(48)
        expires = time.time() + ttl
        with self._lock:
            self._tokens[token] = (key, expires)
        return token, int(expires * 1000)

    def bind(self, token: str, key: str) -> None:
        """Count ``token`` as obtained by ``key`` from now on."""
        with self._lock:
            found = self._tokens.get(token)
            if found is not None:
                self._tokens[token] = (key, found[1])

    def key_of(self, token: str) -> Optional[str]:
        """The key that obtained ``token`` while it is issued, unexpired and not revoked."""
        with self._lock:
            found = self._tokens.get(token)
        if found is None or time.time() >= found[1]:
            return None
        return found[0]

    def revoke_all(self) -> None:
        """Forget every issued token."""
        with self._lock:
            self._tokens.clear()

    def count_oauth(self, key: Optional[str]) -> None:
        """Count one request that reached the OAuth endpoint (``key``: its Basic key)."""
        with self._lock:
            self._oauth[key] = self._oauth.get(key, 0) + 1

    def oauth_calls(self, key: Optional[str] = None) -> int:
        """OAuth requests in total, or those that carried ``key``."""
        with self._lock:
            if key is None:
                return sum(self._oauth.values())
            return self._oauth.get(key, 0)

    def enter(self, key: str, limit: Optional[int]) -> bool:
        """Take an in-flight slot of ``key``; False (and one more 429 counted) when full."""
        with self._lock:
            now = self._in_flight.get(key, 0)
            if limit is not None and now >= limit:
                self._refused[key] = self._refused.get(key, 0) + 1
                return False
            self._in_flight[key] = now + 1
            self._peak[key] = max(self._peak.get(key, 0), now + 1)
            return True

    def admit(self, token: Optional[str], limit: Optional[int]) -> Tuple[bool, Optional[str]]:
        """:meth:`enter` for the key owning ``token``; an invalid token is let through (to its 401)."""
        key = None if token is None else self.key_of(token)
        if key is None:
            return True, None
        return self.enter(key, limit), key

    def leave(self, key: str) -> None:
        """Give back a slot taken by :meth:`enter`."""
        with self._lock:
            self._in_flight[key] -= 1

    def in_flight(self, key: str) -> int:
        """Requests and streams of ``key`` being answered now."""
        with self._lock:
            return self._in_flight.get(key, 0)

    def peak(self, key: str) -> int:
        """The most requests and streams of ``key`` ever answered at once."""
        with self._lock:
            return self._peak.get(key, 0)

    def refused(self, key: Optional[str] = None) -> int:
        """429s sent for being over the in-flight limit, in total or for ``key``."""
        with self._lock:
            if key is None:
                return sum(self._refused.values())
            return self._refused.get(key, 0)
