"""Names in the store for one GigaChat identity, derived without ever storing the key.

An identity is (auth URL, authorization key, scope): GigaChat's limits and
tokens are per key, and the same key under another scope or OAuth endpoint
is another identity. Its :class:`FleetKey` carries the scope in clear (it is
no secret and makes a store readable) and a SHA-256 digest of the auth URL,
the key and the scope; the key itself never leaves the process.

An authorization key is base64 of a client id and a random secret, so an
unsalted digest cannot be reversed by guessing; the fixed domain string
keeps it from matching digests of the same key made for other purposes.
"""

from __future__ import annotations

import hashlib
from typing import Hashable, NamedTuple

__all__ = ["FleetKey", "fleet_key", "default_limit", "DEFAULT_LIMITS"]

#: GigaChat's concurrent-request limit per scope (personal keys: one at a time).
DEFAULT_LIMITS = {"GIGACHAT_API_PERS": 1, "GIGACHAT_API_B2B": 10, "GIGACHAT_API_CORP": 10}

_DOMAIN = b"gigachat_lite coordination v1\0"


class FleetKey(NamedTuple):
    """The store-safe identity of one (auth URL, key, scope): no secret in it."""

    scope: str
    digest: str

    def name(self, kind: str) -> str:
        """The store entry name for ``kind`` (``tok``, ``lock``, ``slots``...) of this identity."""
        short = self.scope[len("GIGACHAT_API_"):] if self.scope.startswith("GIGACHAT_API_") else "x"
        return f"{kind}.{short}.{self.digest}"

    def __repr__(self) -> str:
        return f"FleetKey(scope={self.scope!r}, digest={self.digest[:8]}...)"


def fleet_key(key: Hashable) -> FleetKey:
    """The :class:`FleetKey` of ``(auth_url, api_key, scope)``, the token cache's key today.

    A :class:`FleetKey` is returned as is. Raises TypeError for anything else.
    """
    if isinstance(key, FleetKey):
        return key
    if not (isinstance(key, tuple) and len(key) == 3 and all(isinstance(part, str) for part in key)):
        raise TypeError("a coordination key is (auth_url, api_key, scope), three strings")
    auth_url, api_key, scope = key
    digest = hashlib.sha256(_DOMAIN + "\0".join((auth_url, api_key, scope)).encode("utf-8")).hexdigest()[:32]
    return FleetKey(scope, digest)


def default_limit(scope: str) -> int:
    """In-flight requests GigaChat allows per key in ``scope``: 1 personal, 10 business."""
    return DEFAULT_LIMITS.get(scope, 1)
