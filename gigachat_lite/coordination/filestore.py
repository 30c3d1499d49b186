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
* Leases and locks expire, so whatever a dead worker held frees within its TTL.

**Time** is the machine's monotonic clock since boot (``CLOCK_BOOTTIME`` on
Linux, else :func:`time.monotonic`), which every process of the machine
shares and no wall-clock step moves: a clock set back an hour neither turns a
2 s pause into an hour nor frees a held slot. Every stamp records when it was
written, and an entry stamped later than now was written before a reboot
(the clock restarted): it is dead. So no entry outlives the duration it was
written for.

**Waiting for a slot** (see :mod:`._slots`): a waiter queues in the key's
file and sleeps on its own named pipe, ``NAME.<holder>.wake``. Whoever frees
a slot hands it to the head of the queue under the lock and writes one byte
into that waiter's pipe, so the next waiter runs within a scheduler's tick,
without polling. Opening a pipe whose reader is gone fails (``ENXIO``): a
waiter whose process died is skipped at once, and the next one served. A
waiter whose call is cancelled is woken the same way by its own process,
with another byte, which it reads as "not served" before leaving the queue.
So the folder must be on a local file system that has named pipes (tmpfs,
ext4, xfs, APFS...), as ``flock`` already asks.

A lock that is never released (a holder stopped with SIGSTOP, say) is waited
on for ``timeout`` seconds at most, then :class:`CoordinationError`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import select
import stat
import sys
import threading
import time
import warnings
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ._slots import LOST, Slots
from .errors import CoordinationError
from .store import Store, check_name

try:
    import fcntl
except ImportError:  # Windows: open_store falls back to MemoryStore with a warning
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileStore", "FILE_LOCKS_AVAILABLE"]

FILE_LOCKS_AVAILABLE = fcntl is not None

if hasattr(time, "CLOCK_BOOTTIME"):
    def _now() -> float:
        """Seconds since boot, suspend included: one clock for every process of the machine."""
        return time.clock_gettime(time.CLOCK_BOOTTIME)
else:  # macOS, the BSDs: system-wide too, and never stepped
    _now = time.monotonic

# poll() has been unreliable on FIFOs on macOS; select() is not, but is
# bounded by FD_SETSIZE, which poll() is not.
_USE_POLL = sys.platform.startswith("linux") and hasattr(select, "poll")


# Lock files open in this process now. A flock belongs to the open file, which a forked child shares
# through its copy of the descriptor: a child forked while a thread held one would hold that lock for
# its whole life after the parent let go. The child closes its copies at once (the parent's lock stays);
# _FORKS keeps a fork out of the moments between opening a lock file and noting it, and back.
_HELD: "set[int]" = set()
_FORKS = threading.Lock()
_LIVE: "weakref.WeakSet[FileStore]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _FORKS
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()
    _FORKS = threading.Lock()
    for store in list(_LIVE):
        store._wake_lock = threading.Lock()  # a parent thread may have held it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=lambda: _FORKS.acquire(), after_in_parent=lambda: _FORKS.release(),
                        after_in_child=_after_fork_in_child)

# What a waiter's pipe carries: a granter's "you hold a lease", or its own process's "stop waiting".
_SERVED, _INTERRUPTED = b"!", b"?"


def _wait_readable(fd: int, seconds: float) -> bool:
    if _USE_POLL:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(math.ceil(seconds * 1000), 0)))
    return bool(select.select([fd], [], [], max(seconds, 0.0))[0])


class FileStore(Store):
    """A folder of small files shared by the processes of one machine (POSIX only).

    Args:
        path: the folder; created with mode 0700 if missing.
        timeout: seconds to wait for a file lock before :class:`CoordinationError`.
        clock: the seconds every time in the folder is kept on; the machine's
            clock since boot by default (``CLOCK_BOOTTIME``, else ``time.monotonic``),
            which no wall-clock step moves. Tests pass their own to play a reboot.
    """

    def __init__(self, path: str, *, timeout: float = 5.0, clock: Optional[Callable[[], float]] = None) -> None:
        if fcntl is None:
            raise CoordinationError("the file coordination store needs fcntl (POSIX); not available here")
        self.clock: Callable[[], float] = clock or _now
        self.path = os.path.abspath(path)
        self.url = "file://" + self.path
        self._timeout = timeout
        self._wake_fds: Dict[str, int] = {}  # a waiting holder's pipe path -> its read end
        self._wake_lock = threading.Lock()
        _LIVE.add(self)
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
        with _FORKS:  # no fork between the open and the note of it
            try:
                fd = os.open(base + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise CoordinationError(f"cannot open a lock file in {self.path}: {exc.strerror}") from exc
            _HELD.add(fd)
        try:
            deadline = time.monotonic() + self._timeout
            pause = 0.0002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    # LOCK_NB and a short poll rather than a blocking flock: a
                    # stopped (not dead) holder must not hang us forever. A lock is
                    # held for well under a millisecond, so the first retries come soon.
                    if time.monotonic() > deadline:
                        raise CoordinationError(
                            f"a lock in {self.path} stayed held for {self._timeout:.0f} s"
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.005)
            yield base + ".json"
        finally:
            with _FORKS:
                _HELD.discard(fd)
                os.close(fd)  # closing the descriptor drops the flock

    def _read_raw(self, path: str) -> bytes:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except OSError:
            return b""  # missing or unreadable means empty: every entry can be rebuilt or re-taken

    @staticmethod
    def _parse(raw: bytes) -> Dict[str, Any]:
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, RecursionError):  # garbled, or nested past the parser's depth: empty, as promised
            return {}
        return data if isinstance(data, dict) else {}

    def _read(self, path: str) -> Dict[str, Any]:
        return self._parse(self._read_raw(path))

    @staticmethod
    def _encode(data: Dict[str, Any]) -> bytes:
        return json.dumps(data, separators=(",", ":")).encode() if data else b""

    def _write(self, path: str, data: Dict[str, Any]) -> None:
        self._write_raw(path, self._encode(data))

    def _write_raw(self, path: str, raw: bytes) -> None:
        if not raw:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
            os.replace(tmp, path)
        except OSError as exc:
            raise CoordinationError(f"cannot write to the coordination folder {self.path}: {exc.strerror}") from exc

    @staticmethod
    def _live(data: Dict[str, Any], now: float) -> Optional[Dict[str, Any]]:
        """``data`` if it is a live value entry (written no later than now, expiring after it)."""
        value, written, until = data.get("v"), data.get("w"), data.get("x")
        if not isinstance(value, str) or not all(isinstance(t, (int, float)) for t in (written, until)):
            return None  # a format this version does not write (an older one's wall-clock times): absent
        return data if written <= now < until else None  # type: ignore[operator]

    # -- plain values ----------------------------------------------------------------

    def get(self, name: str) -> Optional[str]:
        with self._locked(name) as path:
            entry = self._live(self._read(path), self.clock())
        return None if entry is None else str(entry["v"])

    def set(self, name: str, value: str, ttl: float) -> None:
        with self._locked(name) as path:
            now = self.clock()
            self._write(path, {"v": value, "w": now, "x": now + ttl})

    def add(self, name: str, value: str, ttl: float) -> bool:
        with self._locked(name) as path:
            now = self.clock()
            if self._live(self._read(path), now) is not None:
                return False
            self._write(path, {"v": value, "w": now, "x": now + ttl})
            return True

    def delete(self, name: str, expected: Optional[str] = None) -> bool:
        with self._locked(name) as path:
            entry = self._live(self._read(path), self.clock())
            if entry is None or (expected is not None and entry["v"] != expected):
                return False
            self._write(path, {})
            return True

    def extend(self, name: str, ttl: float) -> None:
        with self._locked(name) as path:
            now = self.clock()
            entry = self._live(self._read(path), now)
            if entry is None or entry["x"] < now + ttl:
                self._write(path, {"v": "1", "w": now, "x": now + ttl})

    def remaining(self, name: str) -> float:
        with self._locked(name) as path:
            now = self.clock()
            entry = self._live(self._read(path), now)
        return 0.0 if entry is None else max(float(entry["x"]) - now, 0.0)

    # -- leases ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _slots(self, name: str) -> Iterator[Tuple[Slots, Callable[[str], bool]]]:
        """The key's slot table (and how to wake a waiter), locked and written back after the block.

        Waiters served in the block are woken once the table is on file, so a
        woken waiter's lease is there; on an error their pipes are closed
        unwritten, and they read that as "not served".
        """
        woken: List[int] = []
        try:
            with self._locked(name) as path:
                raw = self._read_raw(path)
                slots = Slots.from_json(self._parse(raw))
                queued = [waiter.holder for waiter in slots.queue]
                yield slots, self._notifier(name, woken)
                after = self._encode(slots.to_json())
                if after != raw:
                    self._write_raw(path, after)
                    kept = {w.holder for w in slots.queue}.union(slots.leases)
                    for holder in queued:
                        if holder not in kept:
                            self._unlink_wake(name, holder)  # its place expired, or it left: its pipe goes
                for fd in woken:
                    with contextlib.suppress(OSError):
                        os.write(fd, _SERVED)
        finally:
            for fd in woken:
                os.close(fd)

    def _wake_path(self, name: str, holder: str) -> str:
        return os.path.join(self.path, check_name(f"{name}.{holder}.wake"))

    def _notifier(self, name: str, woken: List[int]) -> Callable[[str], bool]:
        def notify(holder: str) -> bool:
            path = self._wake_path(name, holder)
            try:
                woken.append(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)))
            except OSError as exc:
                if exc.errno in (errno.ENXIO, errno.ENOENT):  # no reader: the waiter's process is gone
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                    return False
                # Served all the same: the waiter finds its lease at its next heartbeat.
            return True
        return notify

    def _open_wake(self, name: str, holder: str) -> int:
        """The read end of ``holder``'s pipe, made if missing (before it queues, so it can be woken)."""
        path = self._wake_path(name, holder)
        with self._wake_lock:
            fd = self._wake_fds.get(path)
            if fd is not None:
                try:
                    if os.stat(path).st_ino == os.fstat(fd).st_ino:
                        return fd
                except OSError:
                    pass
                os.close(fd)  # its pipe was removed (its place had expired): make another
                del self._wake_fds[path]
            try:
                with contextlib.suppress(FileExistsError):
                    os.mkfifo(path, 0o600)
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
            except OSError as exc:
                raise CoordinationError(f"cannot make a wake-up pipe in {self.path}: {exc.strerror}") from exc
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.close(fd)
                raise CoordinationError(f"{path} is not a pipe; remove it")
            self._wake_fds[path] = fd
            return fd

    def _close_wake(self, name: str, holder: str) -> None:
        path = self._wake_path(name, holder)
        with self._wake_lock:
            fd = self._wake_fds.pop(path, None)
        if fd is not None:
            os.close(fd)
        self._unlink_wake(name, holder)

    def _unlink_wake(self, name: str, holder: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            os.unlink(self._wake_path(name, holder))

    def lease_acquire(self, name: str, holder: str, limit: int, ttl: float) -> bool:
        with self._slots(name) as (slots, _):
            return slots.acquire(holder, limit, ttl, self.clock())

    def lease_renew(self, name: str, holder: str, ttl: float, limit: int = 0) -> bool:
        with self._slots(name) as (slots, _):
            return slots.renew(holder, ttl, limit, self.clock()) != LOST

    def lease_release(self, name: str, holder: str) -> None:
        with self._slots(name) as (slots, notify):
            slots.release(holder, self.clock(), notify)

    def lease_count(self, name: str) -> int:
        with self._locked(name) as path:
            return Slots.from_json(self._read(path)).count(self.clock())

    def lease_waiting(self, name: str) -> int:
        with self._locked(name) as path:
            return Slots.from_json(self._read(path)).waiting(self.clock())

    def lease_queue(self, name: str, holder: str, limit: int, ttl: float) -> Optional[float]:
        self._open_wake(name, holder)
        with self._slots(name) as (slots, notify):
            now = self.clock()
            served = slots.join(holder, limit, ttl, now, notify)
            hint = None if served else slots.next_expiry(now, ttl)
        if served:
            self._close_wake(name, holder)
        return hint

    def lease_wait(self, name: str, holder: str, seconds: float) -> bool:
        path = self._wake_path(name, holder)
        with self._wake_lock:
            fd = self._wake_fds.get(path)
        if fd is None:
            return False  # not queued here (a FallbackStore switching over): the next lease_queue queues it
        if not _wait_readable(fd, seconds):
            return False
        try:
            data = os.read(fd, 16)
        except BlockingIOError:
            return False
        if not data:
            # A granter opened the pipe and closed it unwritten (its write to the folder
            # failed): not served. Reopen, or the pipe would read as "ready" forever.
            self._close_wake(name, holder)
            self._open_wake(name, holder)
            return False
        if _SERVED not in data:
            return False  # only lease_interrupt's byte: its caller leaves the queue (and closes the pipe) next
        self._close_wake(name, holder)
        return True

    def lease_interrupt(self, name: str, holder: str) -> None:
        # No lock (_wake_lock included): a finaliser may call this in a thread holding one. The
        # pipe's path is enough; opening it fails once the waiter has closed its read end.
        try:
            fd = os.open(self._wake_path(name, holder),
                         os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
        except (OSError, ValueError):
            return  # no waiter reads it (served, gone, or not queued yet): nothing to wake
        try:
            os.write(fd, _INTERRUPTED)
        except OSError:
            pass
        finally:
            os.close(fd)

    def lease_leave(self, name: str, holder: str) -> bool:
        try:
            with self._slots(name) as (slots, _):
                return slots.leave(holder, self.clock())
        finally:
            self._close_wake(name, holder)

    # -- rate --------------------------------------------------------------------------

    def rate_hit(self, name: str, limit: int, window: float) -> float:
        with self._locked(name) as path:
            now = self.clock()
            raw = self._read(path).get("hits")
            # A hit stamped after now was recorded before a reboot: gone.
            hits = sorted(t for t in (raw if isinstance(raw, list) else [])
                          if isinstance(t, (int, float)) and now - window < t <= now)
            if len(hits) < limit:
                hits.append(now)
                self._write(path, {"hits": hits})
                return 0.0
            return max(hits[0] + window - now, 1e-3)
