"""Text the command did not write, shown on a terminal: control characters become visible.

A reply, an error message, a model id or a request id comes from the server.
Written raw to a terminal, its control characters are commands: OSC 52 sets the
clipboard, OSC 0 the window title, ``ESC [2J`` clears the screen, a lone CR or
backspaces overwrite what is already shown. So on a terminal every control
character is shown the way Python's ``repr`` writes it (``\\x1b``, ``\\r``,
``\\x07``, ``\\x9b``), dimmed where the terminal has styles; text, newlines,
tabs and CR LF pass. What is escaped: C0 (but tab and newline), DEL, C1
(U+0080-U+009F, which some terminals obey as 8-bit ESC sequences) and lone
surrogates (a JSON ``\\ud800`` that no encoding can write).

Escaping the characters, rather than recognising sequences and removing them,
needs no parser of the terminals' many dialects (one gap in it would be an
injection), hides nothing the user may need to see, and stays right however a
stream splits a sequence: once its ESC is shown as text, the rest is plain
text. The one thing a split matters for is CR LF, whose CR may end a chunk:
:class:`Screen` holds such a CR back until the next chunk says what it is.

Pipes, files and ``--raw`` get the text as sent.
"""

from __future__ import annotations

import os
import re
from typing import Mapping, TextIO

__all__ = ["Screen", "is_terminal", "shown_on"]

# Tab (\x09) and newline (\x0a) pass; CR (\x0d) passes only as part of CR LF.
_CONTROLS = re.compile("(?:[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]|\r(?!\n))+")
# SGR 2 (faint) and 22 (normal intensity): the one style the command itself writes.
_DIM, _UNDIM = "\x1b[2m", "\x1b[22m"


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed, or a stand-in without isatty
        return False


def _has_styles(env: Mapping[str, str]) -> bool:
    # NO_COLOR: https://no-color.org ("present and not an empty string").
    return env.get("TERM", "") not in ("", "dumb") and not env.get("NO_COLOR")


def _escape(char: str) -> str:
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class Screen:
    """One output stream as its reader sees it.

    On a terminal (and without ``raw``) :meth:`text` and :meth:`piece` return
    the text with its control characters made visible; elsewhere they return
    it unchanged.
    """

    def __init__(self, stream: TextIO, *, raw: bool = False, env: Mapping[str, str] = os.environ) -> None:
        self.active = not raw and is_terminal(stream)
        self.styled = self.active and _has_styles(env)
        self._held = ""  # a CR that ended the last piece: the start of CR LF, or a lone CR

    def _shown(self, match: re.Match[str]) -> str:
        escaped = "".join(_escape(char) for char in match.group())
        return f"{_DIM}{escaped}{_UNDIM}" if self.styled else escaped

    def text(self, text: str) -> str:
        """A whole text (an error, a status line, a model id)."""
        return _CONTROLS.sub(self._shown, text) if self.active else text

    def piece(self, text: str) -> str:
        """The next piece of a streamed text; :meth:`end` releases what it held back."""
        if not self.active:
            return text
        text = self._held + text
        self._held = "\r" if text.endswith("\r") else ""
        return self.text(text[: len(text) - len(self._held)])

    def end(self) -> str:
        """What :meth:`piece` held back (a CR with no LF after it), shown; ``""`` if nothing."""
        held, self._held = self._held, ""
        return self.text(held)


def shown_on(stream: TextIO, text: str) -> str:
    """``text`` as it may be written to ``stream`` (escaped on a terminal)."""
    return Screen(stream).text(text)
