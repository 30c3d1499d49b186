"""The exceptions the coordination layer adds to the library's tree.

They subclass :class:`gigachat_lite.errors.GigaChatError`, so a caller that
catches the library's root catches these too::

    GigaChatError
    ├── CoordinationError          the store (Redis, a folder) could not be used
    └── ConcurrencyLimitTimeout    no slot or rate budget freed up before the deadline

Messages name the scope and the limit, never the key: the key only ever
appears in the store as part of a SHA-256 digest.
"""

from __future__ import annotations

from ..errors import GigaChatError

__all__ = ["CoordinationError", "ConcurrencyLimitTimeout"]


class CoordinationError(GigaChatError):
    """The coordination store is unreachable or failed (Redis down, folder unwritable).

    Raised instead of hanging: the Redis client runs with socket timeouts.
    ``open_store(..., fallback=True)`` turns this into a warning and
    in-process coordination.
    """


class ConcurrencyLimitTimeout(GigaChatError):
    """Waiting for a concurrency slot (or the OAuth rate budget) outlasted the deadline.

    Attributes:
        what: what was waited for, e.g. ``"a concurrency slot"``.
        limit: the limit in force (slots, or calls per second).
        waited: seconds spent waiting.
    """

    def __init__(self, what: str, *, limit: int, waited: float, scope: str = "") -> None:
        self.what = what
        self.limit = limit
        self.waited = waited
        self.scope = scope
        where = f" for {scope}" if scope else ""
        super().__init__(f"timed out after {waited:.2f} s waiting for {what}{where} (limit {limit})")
