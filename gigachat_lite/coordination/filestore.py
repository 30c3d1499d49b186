"""The file backend: processes on one machine coordinate through a folder.

Each entry ``NAME`` is two files in the folder: ``NAME.json`` holds its data
and expiries, ``NAME.lock`` is locked with ``flock`` for the few microseconds
of a read-modify-write. The folder is created 0700 and every file 0600, so
only the owning user can read a token or take a slot.

Why it survives a worker killed mid-call:

* ``flock`` locks belong to the open file, so the kernel drops them when a
  process dies; nobody waits on a dead holder. (``lockf``/``fcntl`` record
  locks would not do: they are per process, so two threads of one process
  would not exclude each other.)
* Data is written to a temporary file and renamed over ``NAME.json``, so a
  reader sees the old state or the new one, never half of one. A process
  killed between the write and the rename leaves a ``*.tmp`` file, ignored.
* Leases and locks expire by wall-clock time, so whatever a dead worker held
  frees within its TTL.

A lock that is never released (a holder stopped with SIGSTOP, say) is waited
on for ``timeout`` seconds at most, then :class:`CoordinationError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
import warnings
from typing import Any, Dict, Iterator, Optional

from .errors import CoordinationError
from .store import Store, check_name

try:
    import fcntl
except ImportError:  # Windows: open_store falls back to MemoryStore with a warning
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileStore", "FILE_LOCKS_AVAILABLE"]

FILE_LOCKS_AVAILABLE = fcntl is not None


class FileStore(Store):
    """A folder of small files shared by the processes of one machine (POSIX only).

    Args:
        path: the folder; created with mode 0700 if missing.
        timeout: seconds to wait for a file lock before :class:`CoordinationError`.
    """

    def __init__(self, path: str, *, timeout: float = 5.0) -> None:
        if fcntl is None:
            raise CoordinationError("the file coordination store needs fcntl (POSIX); not available here")
        self.path = os.path.abspath(path)
        self.url = "file://" + self.path
        self._timeout = timeout
        try:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
        except OSError as exc:
            raise CoordinationError(f"cannot create the coordination folder {self.path}: {exc.strerror}") from exc
        if mode & 0o077:
            warnings.warn(
                f"gigachat_lite: the coordination folder {self.path} is open to other users "
                f"(mode {mode:o}); tokens stored there are readable by them",
                RuntimeWarning,
                stacklevel=3,
            )

    # -- file plumbing -------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[str]:
        """Hold NAME.lock exclusively; yield the data file's path."""
        base = os.path.join(self.path, check_name(name))
        try:
            fd = os.open(base + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise CoordinationError(f"cannot open a lock file in {self.path}: {exc.strerror}") from exc
        try:
            deadline = time.monotonic() + self._timeout
            pause = 0.0005
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    # LOCK_NB and a short poll rather than a blocking flock: a
                    # stopped (not dead) holder must not hang us forever.
                    if time.monotonic() > deadline:
                        raise CoordinationError(
                            f"a lock in {self.path} stayed held for {self._timeout:.0f} s"
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.01)
            yield base + ".json"
        finally:
            os.close(fd)  # closing the descriptor drops the flock

    def _read(self, path: str) -> Dict[str, Any]:
        try:
            with open(path, "rb") as handle:
                data = json.loads(handle.read() or b"{}")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable means empty: every entry can be rebuilt or re-taken
        return data if isinstance(data, dict) else {}

    def _write(self, path: str, data: Dict[str, Any]) -> None:
        if not data:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(data, separators=(",", ":")).encode())
            os.replace(tmp, path)
        except OSError as exc:
            raise CoordinationError(f"cannot write to the coordination folder {self.path}: {exc.strerror}") from exc

    def _value(self, data: Dict[str, Any], now: float) -> Optional[str]:
        value, until = data.get("v"), data.get("x", 0)
        return value if isinstance(value, str) and isinstance(until, (int, float)) and until > now else None

    # -- plain values ----------------------------------------------------------------

    def get(self, name: str) -> Optional[str]:
        with self._locked(name) as path:
            return self._value(self._read(path), time.time())

    def set(self, name: str, value: str, ttl: float) -> None:
        with self._locked(name) as path:
            self._write(path, {"v": value, "x": time.time() + ttl})

    def add(self, name: str, value: str, ttl: float) -> bool:
        with self._locked(name) as path:
            now = time.time()
            if self._value(self._read(path), now) is not None:
                return False
            self._write(path, {"v": value, "x": now + ttl})
            return True

    def delete(self, name: str, expected: Optional[str] = None) -> bool:
        with self._locked(name) as path:
            current = self._value(self._read(path), time.time())
            if current is None or (expected is not None and current != expected):
                return False
            self._write(path, {})
            return True

    def extend(self, name: str, ttl: float) -> None:
        with self._locked(name) as path:
            now = time.time()
            data = self._read(path)
            if self._value(data, now) is None or data["x"] < now + ttl:
                self._write(path, {"v": "1", "x": now + ttl})

    def remaining(self, name: str) -> float:
        with self._locked(name) as path:
            now = time.time()
            data = self._read(path)
            return max(float(data["x"]) - now, 0.0) if self._value(data, now) is not None else 0.0

    # -- leases ------------------------------------------------------------------------

    def _leases(self, path: str, now: float) -> Dict[str, float]:
        leases = self._read(path).get("leases")
        if not isinstance(leases, dict):
            return {}
        return {h: float(u) for h, u in leases.items() if isinstance(u, (int, float)) and u > now}

    def lease_acquire(self, name: str, holder: str, limit: int, ttl: float) -> bool:
        with self._locked(name) as path:
            now = time.time()
            leases = self._leases(path, now)
            if holder not in leases and len(leases) >= limit:
                return False
            leases[holder] = now + ttl
            self._write(path, {"leases": leases})
            return True

    def lease_renew(self, name: str, holder: str, ttl: float) -> bool:
        with self._locked(name) as path:
            now = time.time()
            leases = self._leases(path, now)
            if holder not in leases:
                return False
            leases[holder] = now + ttl
            self._write(path, {"leases": leases})
            return True

    def lease_release(self, name: str, holder: str) -> None:
        with self._locked(name) as path:
            leases = self._leases(path, time.time())
            if leases.pop(holder, None) is not None:
                self._write(path, {"leases": leases} if leases else {})

    def lease_count(self, name: str) -> int:
        with self._locked(name) as path:
            return len(self._leases(path, time.time()))

    # -- rate --------------------------------------------------------------------------

    def rate_hit(self, name: str, limit: int, window: float) -> float:
        with self._locked(name) as path:
            now = time.time()
            raw = self._read(path).get("hits")
            hits = sorted(t for t in (raw if isinstance(raw, list) else []) if isinstance(t, (int, float)) and t > now - window)
            if len(hits) < limit:
                hits.append(now)
                self._write(path, {"hits": hits})
                return 0.0
            return max(hits[0] + window - now, 1e-3)
