"""Reading one message at the interactive prompt: pastes, continuation lines, line editing.

A message ends at Enter, except that:

* a paste is one message: lines that are already waiting when Enter arrives
  (a terminal delivers a paste all at once) join the message;
* a line ending with ``\\`` goes on to the next line;
* a line starting with ``\"\"\"`` opens a block that the next line ending
  with ``\"\"\"`` closes.
"""

from __future__ import annotations

import select
import sys
from typing import List, Optional

from .history import History

__all__ = ["LineReader", "MULTILINE_HELP"]

MULTILINE_HELP = 'several lines: end a line with \\ to go on, or wrap them in """; a paste is one message'
_QUOTES = '"""'
_NOT_RECALLED = ("/exit", "/quit")  # an up arrow that leaves would surprise
_PASTE_WINDOW = 0.03  # seconds: a paste's next line is already there; a typist's is not


def _enable_line_editing(history: Optional[History]) -> None:
    # Imported here, not at module level: readline costs start-up time that only
    # the interactive prompt needs. It is absent on Windows and some minimal
    # builds; plain input() still works.
    try:
        import readline
    except ImportError:
        return
    readline.set_auto_history(False)  # a message of several lines goes in as one entry
    for entry in history.entries if history else ():
        readline.add_history(entry)


def _remember_in_editor(text: str) -> None:
    readline = sys.modules.get("readline")
    if readline is not None:
        readline.add_history(text)


def _more_waiting() -> bool:
    try:
        ready, _, _ = select.select([sys.stdin], [], [], _PASTE_WINDOW)
    except (OSError, ValueError):  # no selectable stdin (e.g. Windows): no paste detection
        return False
    return bool(ready)


class LineReader:
    """``read()`` returns the next message, or ``None`` at end of input (Ctrl-D)."""

    def __init__(self, history: Optional[History] = None, prompt: str = "> ", more: str = "... ") -> None:
        self.history = history
        self.prompt = prompt
        self.more = more
        _enable_line_editing(history)

    def read(self) -> Optional[str]:
        try:
            first = input(self.prompt)
        except EOFError:
            return None
        try:
            lines = self._block(first) if first.lstrip().startswith(_QUOTES) else self._lines(first)
        except KeyboardInterrupt:  # Ctrl-C inside a message of several lines drops that message only
            sys.stdout.write("\n(message dropped)\n")
            return ""
        text = "\n".join(lines)
        if text.strip() and text.strip() not in _NOT_RECALLED:
            _remember_in_editor(text)
            if self.history is not None:
                self.history.add(text)
        return text

    def _lines(self, first: str) -> List[str]:
        lines = [first]
        while True:
            if lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1]
                prompt = self.more
            elif _more_waiting():
                prompt = ""
            else:
                return lines
            try:
                lines.append(input(prompt))
            except EOFError:  # Ctrl-D after a continuation: send what is there
                return lines

    def _block(self, first: str) -> List[str]:
        opening = first.lstrip()[len(_QUOTES):]
        if opening.rstrip().endswith(_QUOTES):  # """one line"""
            return [opening.rstrip()[: -len(_QUOTES)]]
        lines = [opening] if opening.strip() else []
        while True:
            try:
                line = input(self.more)
            except EOFError:
                return lines
            if line.rstrip().endswith(_QUOTES):
                closing = line.rstrip()[: -len(_QUOTES)]
                return lines + ([closing] if closing.strip() else [])
            lines.append(line)
