"""What the command writes: the reply on stdout, status and errors on stderr (or JSON on stdout)."""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, Mapping, Optional, TextIO

from .messages import describe, error_object, redact

__all__ = ["PROG", "Output", "note", "report", "format_warning"]

PROG = "gigachat-lite"


class Output:
    """Writes reply text (or JSON lines) to stdout, flushed per chunk.

    Remembers whether the cursor is mid-line, so that an error, an interruption
    or the next prompt starts on a line of its own.
    """

    def __init__(self, stream: TextIO, json_lines: bool = False) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self.partial = False

    def chunk(self, text: str) -> None:
        """One piece of the reply, visible at once."""
        if self.json_lines:
            self.json({"content": text})
            return
        if text:
            # Set first: Ctrl-C can land once the bytes are out but before write() returns.
            self.partial = not text.endswith("\n")
            self.stream.write(text)
            self.stream.flush()

    def finish(self, result: Any) -> None:
        """End of a reply: a newline, or the final JSON line with the reply's metadata."""
        if self.json_lines:
            self.json({"finish_reason": result.finish_reason, "usage": result.usage, "model": result.model})
        else:
            self.end_line()

    def end_line(self) -> None:
        """Close a partly written line (idempotent)."""
        if self.partial:
            self.partial = False
            self.stream.write("\n")
            self.stream.flush()

    def json(self, obj: Mapping[str, Any]) -> None:
        self.stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stream.flush()


def note(message: str) -> None:
    """A status line for people (stderr, so stdout stays the reply alone)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def report(error: Any, *, as_json: bool = False, debug: bool = False) -> None:
    """Tell the user about ``error``: one stderr line, or with ``as_json`` an object on stdout.

    ``debug`` adds the traceback (redacted) on stderr, for a bug report.
    """
    if debug and isinstance(error, BaseException):
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        sys.stderr.write(redact(text))
    if as_json:
        sys.stdout.write(json.dumps(error_object(error), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    sys.stderr.write(f"{PROG}: error: {describe(error)}\n")
    sys.stderr.flush()


def format_warning(message: Any, category: Any, filename: str, lineno: int, line: Optional[str] = None) -> str:
    # The library warns about verify=False; a file:line prefix means nothing to a shell user.
    return f"{PROG}: warning: {describe(str(message))}\n"
