"""The interactive prompt's history file: one JSON string per line, private, never the key.

Where: ``$XDG_DATA_HOME/gigachat_lite/history.jsonl`` (default
``~/.local/share/gigachat_lite/history.jsonl``), folder 0700, file 0600.
Off with ``--no-history`` or ``GIGACHAT_LITE_HISTORY=0``. A message holding a
configured secret (the key, the access token) is never written.

The folder may have been left open to others, and then anyone may have planted
something in it. So every read and write opens the folder first and checks it
through that descriptor (nothing can be swapped between a check and its use):

* a folder of the user's that is open to group or others is tightened to 0700,
  with a warning (it is ours to fix; refusing would only lose the history);
* a folder of another user's is not used, with a warning;
* ``history.jsonl`` is opened relative to the folder's descriptor with
  ``O_NOFOLLOW`` (a planted symlink is refused, never followed) and
  ``O_NONBLOCK`` (a planted FIFO cannot hang the prompt), and is then used only
  if it is a regular file of the user's with no other hard link (a hard link
  would send the conversation into another file); a wider mode is tightened to
  0600. Anything else turns the history off for the session, with a warning,
  and nothing is removed.

The folder itself may be a symlink (to another disk, say): the user put it
there, and its target is checked like a folder. Where ``open`` takes no
``dir_fd`` (Windows) the file is opened by path, without the ownership checks.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import Iterable, List, Mapping, Optional, Set

__all__ = ["History", "history_path", "HISTORY_VARIABLE"]

HISTORY_VARIABLE = "GIGACHAT_LITE_HISTORY"
_KEEP = 1000
_OFF = {"0", "off", "no", "false"}
_BY_FOLDER = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY") and hasattr(os, "fchmod")
_FILE_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def history_path(env: Mapping[str, str] = os.environ) -> Optional[str]:
    """The history file, or ``None`` when the user turned history off."""
    if env.get(HISTORY_VARIABLE, "").strip().lower() in _OFF:
        return None
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "gigachat_lite", "history.jsonl")


class _Refused(Exception):
    """The folder or the file is not safe to use: history is off for this session."""


def _mode(info: os.stat_result) -> str:
    return f"{stat.S_IMODE(info.st_mode):04o}"


class History:
    """Past messages, oldest first; :meth:`add` appends one to the file."""

    def __init__(self, path: str, secrets: Iterable[Optional[str]] = ()) -> None:
        self.path = path
        self.folder, self.name = os.path.split(path)
        self._secrets = [secret for secret in secrets if secret]
        self.entries: List[str] = []
        self._warnings: List[str] = []
        self._said: Set[str] = set()
        self._refused = False
        try:
            fd = self._open(os.O_RDONLY)
        except FileNotFoundError:
            fd = None
        except _Refused as exc:
            self._refuse(str(exc))
            return
        except OSError as exc:
            self._warn(f"history file {path} not read: {exc.strerror or exc}")
            return
        if fd is not None:
            try:
                with os.fdopen(fd, encoding="utf-8") as handle:
                    for line in handle:
                        try:
                            entry = json.loads(line)
                        except ValueError:
                            continue  # a torn last line after a crash: skip it
                        if isinstance(entry, str):
                            self.entries.append(entry)
            except (OSError, UnicodeDecodeError) as exc:
                self._warn(f"history file {path} not read: {getattr(exc, 'strerror', None) or exc}")
        if len(self.entries) > 2 * _KEEP:
            self.entries = self.entries[-_KEEP:]
            self._write(self.entries, truncate=True)

    def _warn(self, text: str) -> None:
        if text not in self._said:  # a failing write repeats at every message: say it once
            self._said.add(text)
            self._warnings.append(text)

    def take_warnings(self) -> List[str]:
        """What went wrong or was fixed since the last call."""
        warnings, self._warnings = self._warnings, []
        return warnings

    def add(self, text: str) -> None:
        if not text.strip() or any(secret in text for secret in self._secrets):
            return
        if self.entries and self.entries[-1] == text:
            return  # the same message again: one entry is enough for the arrow keys
        self.entries.append(text)
        self._write([text], truncate=False)

    def _refuse(self, why: str) -> None:
        self._refused = True
        self._warn(f"{why}; no history is kept this session")

    def _write(self, entries: List[str], *, truncate: bool) -> None:
        if self._refused:
            return
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            # Never O_TRUNC: it would empty a planted hard link before the checks see it.
            fd = self._open(os.O_WRONLY | os.O_CREAT | (0 if truncate else os.O_APPEND))
            try:
                if truncate:
                    os.ftruncate(fd, 0)
                data = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
                os.write(fd, data.encode("utf-8"))
            finally:
                os.close(fd)
        except _Refused as exc:
            self._refuse(str(exc))
        except OSError as exc:
            self._warn(f"history not saved to {self.path}: {exc.strerror or exc}")

    # -- opening safely --------------------------------------------------------------------

    def _open(self, flags: int) -> int:
        """The history file's descriptor, checked (see the module's docstring)."""
        try:
            if not _BY_FOLDER:
                return os.open(self.path, flags | _FILE_FLAGS, 0o600)
            folder = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            try:
                self._check_folder(folder)
                fd = os.open(self.name, flags | _FILE_FLAGS, 0o600, dir_fd=folder)
            finally:
                os.close(folder)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
                raise _Refused(f"history file {self.path} is a symbolic link, not followed") from None
            raise
        try:
            self._check_file(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check_folder(self, fd: int) -> None:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise _Refused(f"history folder {self.folder} belongs to another user (uid {info.st_uid})")
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o700)
            self._warn(f"history folder {self.folder} was open to others (mode {_mode(info)}); now 0700")

    def _check_file(self, fd: int) -> None:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"history file {self.path} is not a regular file")
        if info.st_uid != os.geteuid():
            raise _Refused(f"history file {self.path} belongs to another user (uid {info.st_uid})")
        if info.st_nlink != 1:
            raise _Refused(f"history file {self.path} has {info.st_nlink - 1} other hard link(s)")
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o600)
            self._warn(f"history file {self.path} was readable by others (mode {_mode(info)}); now 0600")
