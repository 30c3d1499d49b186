"""What the command is waiting for, on stderr: a spinner on a terminal, log lines with -v.

The spinner is only drawn when stderr is a terminal and the output is not
``--json``, so pipes, files and programs never see it. Retries reach it
through the library's ``gigachat_lite`` logger: urllib3 sleeps inside the
request, and the INFO record it logs first (``retry_in``, ``retry_reason``)
is the only moment the command can learn of the wait.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from typing import Any, Optional

from .messages import redact
from .terminal import shown_on

__all__ = ["Status"]

_FRAMES = "|/-\\"
_FIRST_FRAME_AFTER = 0.15  # a reply that comes at once should not flash a spinner
_FRAME_EVERY = 0.1


class Status:
    """The one owner of the terminal's stderr line while a reply is awaited."""

    def __init__(self, *, spinner: bool, verbose: bool, prog: str) -> None:
        self.spinner = spinner
        self.verbose = verbose
        self.prog = prog
        self._text: Optional[str] = None
        self._since = 0.0
        self._drawn = 0  # characters of the spinner line now on screen
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._handler: Optional[logging.Handler] = None

    # -- the spinner -------------------------------------------------------------------

    def waiting(self, text: str) -> None:
        """Show ``text`` ("connecting", "waiting for the first token") until :meth:`done`."""
        if not self.spinner:
            return
        with self._lock:
            if self._text is None:
                self._since = time.monotonic()
            self._text = shown_on(sys.stderr, text)  # a retry's reason may quote the server
        if self._thread is None:
            self._thread = threading.Thread(target=self._spin, name="gigachat-lite-spinner", daemon=True)
            self._thread.start()
        self._wake.set()

    def done(self) -> None:
        """Stop waiting: the spinner line is erased before anything else is written."""
        with self._lock:
            self._text = None
            self._erase()

    def line(self, text: str) -> None:
        """A whole line on stderr that does not garble the spinner."""
        with self._lock:
            self._erase()
            # Log lines quote the server (request ids, models): its control characters show.
            sys.stderr.write(f"{self.prog}: {shown_on(sys.stderr, redact(text))}\n")
            sys.stderr.flush()

    def _spin(self) -> None:
        frame = 0
        while True:
            self._wake.wait(_FRAME_EVERY)
            self._wake.clear()
            with self._lock:
                if self._text is None or time.monotonic() - self._since < _FIRST_FRAME_AFTER:
                    continue
                text = f"{_FRAMES[frame % len(_FRAMES)]} {self._text}..."
                frame += 1
                self._erase()
                sys.stderr.write(text)
                sys.stderr.flush()
                self._drawn = len(text)

    def _erase(self) -> None:
        if self._drawn:
            # Spaces rather than an ANSI erase: works on any terminal, TERM=dumb included.
            sys.stderr.write("\r" + " " * self._drawn + "\r")
            sys.stderr.flush()
            self._drawn = 0

    # -- the library's logger ----------------------------------------------------------

    def listen(self) -> None:
        """Hear the library's retries (and with -v, its requests, ids and token lifetimes)."""
        if not (self.spinner or self.verbose) or self._handler is not None:
            return
        self._handler = _Bridge(self)
        logger = logging.getLogger("gigachat_lite")
        logger.addHandler(self._handler)
        logger.setLevel(logging.DEBUG if self.verbose else logging.INFO)

    def close(self) -> None:
        self.done()
        if self._handler is not None:
            logging.getLogger("gigachat_lite").removeHandler(self._handler)
            self._handler = None


class _Bridge(logging.Handler):
    def __init__(self, status: Status) -> None:
        super().__init__(logging.DEBUG)
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        try:
            wait: Any = getattr(record, "retry_in", None)
            if wait is not None:
                reason = getattr(record, "retry_reason", "a failure")
                self.status.waiting(f"retrying in {max(1, math.ceil(float(wait)))} s after {reason}")
            if self.status.verbose:
                self.status.line(record.getMessage())
        except Exception:  # a status line must never break the command
            self.handleError(record)
