"""``open_store(url)``: the one setting that picks a coordination backend.

The setting is ``coordination`` (environment variable
``GIGACHAT_COORDINATION``), a URL:

============================  =============================================
``None``, ``""``, memory://   this process only (today's behaviour)
``file:///var/run/gigachat``  the processes of one machine, through a folder
``redis://host:6379/0``       many hosts, through Redis (``rediss://``: TLS)
============================  =============================================

With ``fallback=True`` an unreachable Redis (at open or later) becomes a
warning and in-process coordination, re-trying Redis every ``retry_after``
seconds; without it, :class:`CoordinationError`.
"""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from .errors import CoordinationError
from .filestore import FILE_LOCKS_AVAILABLE, FileStore
from .redisstore import RedisStore, redact_url
from .store import MemoryStore, Store

__all__ = ["open_store", "check_store_url", "FallbackStore", "process_store"]

_SETTING = "coordination (GIGACHAT_COORDINATION)"
_PROCESS = MemoryStore()


def process_store() -> MemoryStore:
    """The process-wide in-process store (what ``memory://`` opens)."""
    return _PROCESS


class FallbackStore(Store):
    """``primary`` while it answers; ``secondary`` (in-process) with a warning while it does not."""

    def __init__(self, primary: Store, secondary: Optional[Store] = None, *, retry_after: float = 30.0) -> None:
        self.primary = primary
        self.secondary = secondary if secondary is not None else process_store()
        self.url = primary.url
        self._retry_after = retry_after
        self._down_until = 0.0  # monotonic time before which the primary is not tried
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True while coordination is in-process only."""
        return time.monotonic() < self._down_until

    def mark_down(self, exc: BaseException) -> None:
        with self._lock:
            first = self._down_until == 0.0 or not self.degraded
            self._down_until = time.monotonic() + self._retry_after
        if first:
            warnings.warn(
                f"gigachat_lite: {exc}; coordinating in this process only, retrying in {self._retry_after:.0f} s",
                RuntimeWarning,
                stacklevel=4,
            )

    def _call(self, method: str, *args: Any) -> Any:
        if not self.degraded:
            try:
                return getattr(self.primary, method)(*args)
            except CoordinationError as exc:
                self.mark_down(exc)
        return getattr(self.secondary, method)(*args)

    def get(self, name: str) -> Optional[str]:
        result: Optional[str] = self._call("get", name)
        return result

    def set(self, name: str, value: str, ttl: float) -> None:
        self._call("set", name, value, ttl)

    def add(self, name: str, value: str, ttl: float) -> bool:
        return bool(self._call("add", name, value, ttl))

    def delete(self, name: str, expected: Optional[str] = None) -> bool:
        return bool(self._call("delete", name, expected))

    def extend(self, name: str, ttl: float) -> None:
        self._call("extend", name, ttl)

    def remaining(self, name: str) -> float:
        return float(self._call("remaining", name))

    def lease_acquire(self, name: str, holder: str, limit: int, ttl: float) -> bool:
        return bool(self._call("lease_acquire", name, holder, limit, ttl))

    def lease_renew(self, name: str, holder: str, ttl: float, limit: int = 0) -> bool:
        return bool(self._call("lease_renew", name, holder, ttl, limit))

    def lease_release(self, name: str, holder: str) -> None:
        self._call("lease_release", name, holder)

    def lease_count(self, name: str) -> int:
        return int(self._call("lease_count", name))

    def lease_queue(self, name: str, holder: str, limit: int, ttl: float) -> Optional[float]:
        hint: Optional[float] = self._call("lease_queue", name, holder, limit, ttl)
        return hint

    def lease_wait(self, name: str, holder: str, seconds: float) -> bool:
        return bool(self._call("lease_wait", name, holder, seconds))

    def lease_leave(self, name: str, holder: str) -> bool:
        return bool(self._call("lease_leave", name, holder))

    def lease_waiting(self, name: str) -> int:
        return int(self._call("lease_waiting", name))

    def lease_interrupt(self, name: str, holder: str) -> None:
        # Both: the waiter may sleep in either, and neither call blocks or raises.
        if not self.degraded:
            self.primary.lease_interrupt(name, holder)
        self.secondary.lease_interrupt(name, holder)

    def rate_hit(self, name: str, limit: int, window: float) -> float:
        return float(self._call("rate_hit", name, limit, window))

    def close(self) -> None:
        self.primary.close()


def check_store_url(url: Optional[str]) -> Optional[str]:
    """Validate the ``coordination`` setting without opening anything; return it (``None`` for unset).

    For ``Config.resolve``: a bad URL fails before any network call.

    Raises:
        ValueError, TypeError: as :func:`open_store` would, naming the setting.
    """
    if url is None or url == "":
        return None
    if not isinstance(url, str):
        raise TypeError(f"{_SETTING} must be a URL string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # parses the port: a bad one raises ValueError here, not later
    except ValueError as exc:
        raise ValueError(f"{_SETTING}: malformed URL {redact_url(url)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path or parts.query:
            raise ValueError(f"{_SETTING}: memory:// takes nothing after it, got {redact_url(url)!r}")
    elif scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/") or parts.query or parts.fragment:
            raise ValueError(f"{_SETTING}: a file URL is file:///absolute/folder, got {redact_url(url)!r}")
    elif scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise ValueError(f"{_SETTING}: a Redis URL needs a host, got {redact_url(url)!r}")
        if parts.path not in ("", "/") and not parts.path[1:].isdigit():
            raise ValueError(
                f"{_SETTING}: the Redis database must be a number (redis://host:port/0), got {redact_url(url)!r}"
            )
    else:
        raise ValueError(
            f"{_SETTING}: unsupported URL {redact_url(url)!r}; expected memory://, "
            "file:///absolute/folder, redis://host:port/db or rediss://host:port/db"
        )
    return url


def open_store(url: Optional[str], *, fallback: bool = False, timeout: float = 2.0) -> Store:
    """Open the coordination store named by ``url`` (see the module docstring).

    Args:
        url: ``None``/``""``/``memory://``, ``file:///abs/folder``,
            ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://...``.
        fallback: on an unreachable Redis, warn and coordinate in-process
            instead of raising.
        timeout: Redis connect and read timeout, seconds.

    Raises:
        ValueError, TypeError: a malformed URL, naming the ``coordination`` setting.
        CoordinationError: Redis is unreachable (without ``fallback``), or the
            folder cannot be created.
    """
    checked = check_store_url(url)
    if checked is None:
        return _PROCESS
    parts = urlsplit(checked)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return _PROCESS
    if scheme == "file":
        return _open_file(unquote(parts.path))
    return _open_redis(checked, fallback, timeout)


def _open_file(path: str) -> Store:
    if not FILE_LOCKS_AVAILABLE:
        warnings.warn(
            "gigachat_lite: the file coordination store needs fcntl (POSIX); "
            "coordinating in this process only",
            RuntimeWarning,
            stacklevel=3,
        )
        return _PROCESS
    return FileStore(path)


def _open_redis(url: str, fallback: bool, timeout: float) -> Store:
    shown = redact_url(url)
    try:
        store = RedisStore(url, timeout=timeout)
    except ImportError:
        raise CoordinationError(
            f"{_SETTING} is {shown} but the redis package is not installed: pip install 'gigachat_lite[redis]'"
        ) from None
    wrapped = FallbackStore(store) if fallback else None
    try:
        store.ping()
    except CoordinationError as exc:
        if wrapped is None:
            raise
        wrapped.mark_down(exc)
    return wrapped if wrapped is not None else store
