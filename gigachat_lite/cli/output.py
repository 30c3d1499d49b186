"""What the command writes: the reply on stdout, status and errors on stderr (or JSON on stdout)."""

from __future__ import annotations

import json
import re
import sys
import traceback
from typing import Any, Mapping, Optional, TextIO

from .messages import describe, error_object, redact
from .terminal import Screen, shown_on

__all__ = ["PROG", "Output", "json_text", "write", "write_json", "note", "report", "format_warning"]

PROG = "gigachat-lite"

# json.dumps(ensure_ascii=False) escapes C0 but writes DEL, C1 and lone surrogates as
# they are: a terminal may obey C1, and no encoding writes a lone surrogate.
_JSON_RAW = re.compile("[\x7f-\x9f\ud800-\udfff]")


def json_text(obj: Any) -> str:
    """``obj`` as one line of JSON, readable (Cyrillic as is) and safe on any terminal."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False))


def write_json(stream: TextIO, obj: Any) -> None:
    """``obj`` as one JSON line; all ASCII (``\\u0416``) where the stream cannot encode the text as is."""
    try:
        stream.write(json_text(obj) + "\n")
    except UnicodeEncodeError:  # raised before anything is written: the same JSON data, escaped
        stream.write(json.dumps(obj, ensure_ascii=True) + "\n")


def write(stream: TextIO, text: str) -> None:
    """Write ``text``; a character the stream cannot encode (a lone surrogate) as its escape."""
    try:
        stream.write(text)
    except UnicodeEncodeError:  # raised before anything is written
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding))


class Output:
    """Writes reply text (or JSON lines) to stdout, flushed per chunk.

    Remembers whether the cursor is mid-line, so that an error, an interruption
    or the next prompt starts on a line of its own.
    """

    def __init__(self, stream: TextIO, json_lines: bool = False, raw: bool = False) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self.screen = Screen(stream, raw=raw or json_lines)
        self.partial = False

    def chunk(self, text: str) -> None:
        """One piece of the reply, visible at once (its control characters visible on a terminal)."""
        if self.json_lines:
            self.json({"content": text})
            return
        if text:
            # Set first: Ctrl-C can land once the bytes are out but before write() returns.
            self.partial = not text.endswith("\n")
            write(self.stream, self.screen.piece(text))
            self.stream.flush()

    def finish(self, result: Any) -> None:
        """End of a reply: a newline, or the final JSON line with the reply's metadata."""
        if self.json_lines:
            self.json({"finish_reason": result.finish_reason, "usage": result.usage, "model": result.model})
        else:
            self.end_line()

    def end_line(self) -> None:
        """Close a partly written line (idempotent)."""
        held = self.screen.end()
        if held:
            write(self.stream, held)
        if self.partial:
            self.partial = False
            self.stream.write("\n")
            self.stream.flush()

    def json(self, obj: Mapping[str, Any]) -> None:
        write_json(self.stream, obj)
        self.stream.flush()


def note(message: str) -> None:
    """A status line for people (stderr, so stdout stays the reply alone); it may quote the server."""
    write(sys.stderr, shown_on(sys.stderr, message) + "\n")
    sys.stderr.flush()


def report(error: Any, *, as_json: bool = False, debug: bool = False, kind: Optional[str] = None) -> None:
    """Tell the user about ``error``: one stderr line, or with ``as_json`` an object on stdout.

    ``debug`` adds the traceback (redacted) on stderr, for a bug report; ``kind``
    is the JSON ``type`` of a message given as text (default ``UsageError``).
    """
    if debug and isinstance(error, BaseException):
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        write(sys.stderr, shown_on(sys.stderr, redact(text)))
    if as_json:
        write_json(sys.stdout, error_object(error, kind=kind))
        sys.stdout.flush()
        return
    # The message may quote the server's error text: on a terminal, its control characters show.
    write(sys.stderr, f"{PROG}: error: {shown_on(sys.stderr, describe(error))}\n")
    sys.stderr.flush()


def format_warning(message: Any, category: Any, filename: str, lineno: int, line: Optional[str] = None) -> str:
    # The library warns about verify=False; a file:line prefix means nothing to a shell user.
    return f"{PROG}: warning: {shown_on(sys.stderr, describe(str(message)))}\n"
