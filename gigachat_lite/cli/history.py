"""The interactive prompt's history file: one JSON string per line, private, never the key.

Where: ``$XDG_DATA_HOME/gigachat_lite/history.jsonl`` (default
``~/.local/share/gigachat_lite/history.jsonl``), folder 0700, file 0600.
Off with ``--no-history`` or ``GIGACHAT_LITE_HISTORY=0``. A message holding a
configured secret (the key, the access token) is never written.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, List, Mapping, Optional

__all__ = ["History", "history_path", "HISTORY_VARIABLE"]

HISTORY_VARIABLE = "GIGACHAT_LITE_HISTORY"
_KEEP = 1000
_OFF = {"0", "off", "no", "false"}


def history_path(env: Mapping[str, str] = os.environ) -> Optional[str]:
    """The history file, or ``None`` when the user turned history off."""
    if env.get(HISTORY_VARIABLE, "").strip().lower() in _OFF:
        return None
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "gigachat_lite", "history.jsonl")


class History:
    """Past messages, oldest first; :meth:`add` appends one to the file."""

    def __init__(self, path: str, secrets: Iterable[Optional[str]] = ()) -> None:
        self.path = path
        self._secrets = [secret for secret in secrets if secret]
        self.entries: List[str] = []
        self.problem: Optional[str] = None  # why the file could not be used, once
        try:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a torn last line after a crash: skip it
                    if isinstance(entry, str):
                        self.entries.append(entry)
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError) as exc:
            self.problem = f"history file {path} not read: {getattr(exc, 'strerror', None) or exc}"
        if len(self.entries) > 2 * _KEEP:
            self.entries = self.entries[-_KEEP:]
            self._rewrite()

    def add(self, text: str) -> None:
        if not text.strip() or any(secret in text for secret in self._secrets):
            return
        if self.entries and self.entries[-1] == text:
            return  # the same message again: one entry is enough for the arrow keys
        self.entries.append(text)
        self._write([text], os.O_APPEND)

    def _rewrite(self) -> None:
        self._write(self.entries, os.O_TRUNC)

    def _write(self, entries: List[str], mode: int) -> None:
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | mode, 0o600)
            try:
                if hasattr(os, "fchmod"):  # not on Windows
                    os.fchmod(fd, 0o600)  # an older file may have been created with wider rights
                data = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
                os.write(fd, data.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            self.problem = f"history not saved to {self.path}: {exc.strerror or exc}"
