"""User and password auth: ``POST {base}/token`` with HTTP Basic ``user:password``.

As the official SDK 0.2.4a1 calls it (``api/auth.py``: no body, no RqUID, no scope)
and gigachat-java too (which adds a form ``scope``, accepted here when valid). The
reply is ``{"tok": <token>, "exp": <unix seconds>}``; the SDK reads seconds or
milliseconds alike. A token obtained this way counts, for the emulator's in-flight
limit and ledger, as obtained by the key ``"user:<name>"``. Bad or missing credentials
get 401 ``{"status":401,"message":"Unauthorized"}``; the password is never echoed.
"""

import base64
import binascii
import hmac
import threading
from typing import Any, Dict, Mapping, Optional, Protocol, Tuple
from urllib.parse import parse_qs

from .wire import Reply, error_reply, json_reply

SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")


def ledger_key(name: str) -> str:
    """The ledger key of tokens a user obtained."""
    return "user:" + name


class Users:
    """The accepted ``name -> password`` pairs and how often each logged in."""

    def __init__(self, users: Optional[Mapping[str, str]] = None) -> None:
        pairs = dict(users or {})
        for name, password in pairs.items():
            if not isinstance(name, str) or not name or ":" in name:
                raise ValueError("user names must be non-empty strings without ':', got %r" % (name,))
            if not isinstance(password, str) or not password:
                raise ValueError("the password of user %r must be a non-empty string" % name)
        self._passwords = pairs
        self._lock = threading.Lock()
        self._logins: Dict[str, int] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._passwords

    def __len__(self) -> int:
        return len(self._passwords)

    def names(self) -> Tuple[str, ...]:
        """The configured user names."""
        return tuple(self._passwords)

    def check(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s (compared in constant time)."""
        known = self._passwords.get(name)
        return known is not None and hmac.compare_digest(known.encode("utf-8"), password.encode("utf-8"))

    def count(self, name: str) -> None:
        """Count one successful login of ``name``."""
        with self._lock:
            self._logins[name] = self._logins.get(name, 0) + 1

    def logins(self, name: Optional[str] = None) -> int:
        """Successful ``/token`` calls, in total or of ``name``."""
        with self._lock:
            return sum(self._logins.values()) if name is None else self._logins.get(name, 0)

    def __repr__(self) -> str:  # names only: the passwords are secrets
        return "<Users %s>" % ", ".join(sorted(self._passwords))


class State(Protocol):
    """What ``/token`` needs of the emulator."""

    users: Users

    def issue_token(self, key: Optional[str] = None) -> Tuple[str, int]: ...  # noqa: E704


def basic_pair(headers: Any) -> Optional[Tuple[str, str]]:
    """``(user, password)`` of a ``Basic`` header, or ``None``."""
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    name, colon, password = decoded.partition(":")
    return (name, password) if colon else None


def token(state: State, headers: Any, body: bytes) -> Reply:
    """``POST {base}/token``: Basic ``user:password`` -> ``{"tok", "exp"}``."""
    pair = basic_pair(headers)
    if pair is None or not state.users.check(*pair):
        return error_reply(401, "Unauthorized")
    scope = parse_qs(body.decode("utf-8", "replace")).get("scope")
    if scope is not None and scope[0] not in SCOPES:
        return error_reply(400, "scope must be one of %s" % ", ".join(SCOPES))
    state.users.count(pair[0])
    issued, expires_ms = state.issue_token(ledger_key(pair[0]))
    return json_reply({"tok": issued, "exp": expires_ms // 1000})
