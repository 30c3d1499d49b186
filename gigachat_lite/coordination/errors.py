"""The coordination layer's exceptions, re-exported from :mod:`gigachat_lite.errors` (where the tree is drawn).

Both subclass :class:`gigachat_lite.errors.GigaChatError`::

    GigaChatError
    ├── CoordinationError          the store (Redis, a folder) could not be used
    └── ConcurrencyLimitTimeout    no slot or rate budget freed up before the deadline

Messages name the scope and the limit, never the key: the key only ever
appears in the store as part of a SHA-256 digest.
"""

from __future__ import annotations

from ..errors import ConcurrencyLimitTimeout, CoordinationError

__all__ = ["CoordinationError", "ConcurrencyLimitTimeout"]
