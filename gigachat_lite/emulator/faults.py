"""Injected failures: the :class:`Fault` description, its matching, and a spec parser."""

import fnmatch
import threading
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

# Short names usable as the first part of a fault spec; anything else is used as is.
_TARGETS = {
    "chat": "chat/completions",
    "oauth": "oauth",
    "models": "models",
    "embeddings": "embeddings",
    "tokens": "tokens/count",
    "any": "*",
    "all": "*",
    "*": "*",
}


@dataclass
class Fault:
    """One failure to inject into matching requests.

    ``path`` selects requests: a glob (``*``, ``?``, ``[``) is matched against the
    whole request path, any other text is a substring of it (``"chat/completions"``,
    ``"oauth"``, ``"models"``). ``times`` is how many matching calls it hits
    (``None``: every one). Only one fault applies to a request: the first added that
    matches.

    Actions (exactly one, except that ``stall`` may precede ``status``):

    * ``status``: reply with this code and an error body shaped for the endpoint
      (OAuth ``{"code","message"}``, API ``{"status","message"}``); ``retry_after``
      adds a ``Retry-After`` header (seconds or an HTTP date); ``message`` overrides
      the text.
    * ``reset``: read the request, then close the socket with nothing sent (RST).
    * ``stall``: sleep that many seconds before replying; with ``after=N`` only on
      streams, after N events. ``Emulator.stop()`` interrupts it and drops the line.
    * ``cut_after=N``: stream N events, then drop the connection with no chunked
      terminator.
    * ``malformed_after=N``: after N events send ``data: {not json``, then go on.
    * ``stream_error_after=N``: after N events send ``data: {"status":S,"message":..}``
      (S is ``status`` or 500) and end the body cleanly without ``[DONE]``.

    On a v2 stream (named events) the injected events are named too:
    ``event: response.message.delta`` for the malformed one, ``event: error`` for the
    in-stream error (no recording shows a real one), and the ``chat`` target covers
    both ``/api/v1`` and ``/api/v2`` chat (``path="v2/chat"`` selects v2 only).
    * ``content_type``: reply 200 with this content type and a small HTML page.
    * ``empty_body``: reply 200 with ``Content-Length: 0``.
    * ``unauthorized``: reply 401 as for bad credentials / an expired token.

    Stream actions (``cut_after``, ``malformed_after``, ``stream_error_after``,
    ``stall`` with ``after``) only match streaming chat requests and do not use up
    ``times`` on anything else.
    """

    path: str = "*"
    status: Optional[int] = None
    retry_after: Optional[str] = None
    message: Optional[str] = None
    reset: bool = False
    stall: Optional[float] = None
    after: Optional[int] = None
    cut_after: Optional[int] = None
    malformed_after: Optional[int] = None
    stream_error_after: Optional[int] = None
    content_type: Optional[str] = None
    empty_body: bool = False
    unauthorized: bool = False
    times: Optional[int] = None

    def __post_init__(self) -> None:
        kinds = [
            name
            for name, on in (
                ("reset", self.reset),
                ("cut_after", self.cut_after is not None),
                ("malformed_after", self.malformed_after is not None),
                ("content_type", self.content_type is not None),
                ("empty_body", self.empty_body),
                ("unauthorized", self.unauthorized),
            )
            if on
        ]
        # status doubles as the in-stream error code, so it may join stream_error_after
        if self.stream_error_after is not None:
            kinds.append("stream_error_after")
        elif self.status is not None:
            kinds.append("status")
        if len(kinds) > 1:
            raise ValueError("a fault takes one action, got " + ", ".join(kinds))
        if not kinds and self.stall is None:
            raise ValueError("a fault needs an action (status, reset, stall, cut_after, ...)")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP code 100..599, got %r" % self.status)
        if self.after is not None and self.stall is None:
            raise ValueError("after only applies to stall")
        if self.stall is not None and self.stall < 0:
            raise ValueError("stall must be >= 0 seconds")
        if self.after is not None and kinds:
            raise ValueError("stall with after cannot be combined with " + kinds[0])
        if self.retry_after is not None and self.status is None:
            raise ValueError("retry_after needs a status")
        for name in ("after", "cut_after", "malformed_after", "stream_error_after", "times"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError("%s must be a non-negative int, got %r" % (name, value))

    @property
    def streaming(self) -> bool:
        """Whether this fault acts inside a stream (so only matches streaming requests)."""
        return (
            self.cut_after is not None
            or self.malformed_after is not None
            or self.stream_error_after is not None
            or (self.stall is not None and self.after is not None)
        )

    def matches(self, path: str) -> bool:
        """Whether the request path is selected by :attr:`path`."""
        if any(c in self.path for c in "*?["):
            return fnmatch.fnmatchcase(path, self.path)
        return self.path in path


class _Entry:
    __slots__ = ("fault", "remaining")

    def __init__(self, fault: Fault) -> None:
        self.fault = replace(fault)  # a private copy: callers may reuse their object
        self.remaining = fault.times


class FaultSet:
    """Thread-safe ordered faults with per-fault remaining counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: List[_Entry] = []

    def add(self, fault: Fault) -> None:
        """Append a fault; later ones only apply where earlier ones do not match."""
        with self._lock:
            self._entries.append(_Entry(fault))

    def clear(self) -> None:
        """Drop every fault."""
        with self._lock:
            self._entries.clear()

    def take(self, path: str, streaming: bool) -> Optional[Fault]:
        """Return (and count one use of) the first fault of this kind matching ``path``."""
        with self._lock:
            for entry in self._entries:
                fault = entry.fault
                if fault.streaming != streaming or not fault.matches(path):
                    continue
                if entry.remaining is not None:
                    if entry.remaining <= 0:
                        continue
                    entry.remaining -= 1
                return fault
        return None


_FLAGS = {"reset": "reset", "empty": "empty_body", "empty_body": "empty_body",
          "unauthorized": "unauthorized", "html": "html"}
_KEYS = {
    "status": "status",
    "times": "times",
    "retry_after": "retry_after",
    "message": "message",
    "stall": "stall",
    "after": "after",
    "cut": "cut_after",
    "cut_after": "cut_after",
    "malformed": "malformed_after",
    "malformed_after": "malformed_after",
    "error": "stream_error_after",
    "stream_error_after": "stream_error_after",
    "content_type": "content_type",
}
# Values that may themselves contain ':' (HTTP dates, free text, media types).
_GREEDY = {"retry_after", "message", "content_type"}


def _is_new_part(part: str, in_greedy: bool) -> bool:
    # Inside a date like "07:28:00" a bare number is more of the value, not a status.
    if part in _FLAGS or (part.isdigit() and not in_greedy):
        return True
    key, eq, _ = part.partition("=")
    return bool(eq) and key in _KEYS


def _split(spec: str) -> Tuple[str, List[str]]:
    target, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError("fault spec %r needs TARGET:ACTION" % spec)
    parts: List[str] = []
    for part in rest.split(":"):
        in_greedy = bool(parts) and _KEYS.get(parts[-1].split("=")[0]) in _GREEDY
        if in_greedy and not _is_new_part(part, in_greedy):
            parts[-1] += ":" + part  # e.g. retry_after=Wed, 21 Oct 2015 07:28:00 GMT
        else:
            parts.append(part)
    return target, parts


def parse_fault(spec: str) -> Fault:
    """Build a :class:`Fault` from ``TARGET:PART[:PART...]``.

    ``TARGET`` is ``chat``, ``oauth``, ``models``, ``embeddings``, ``tokens`` or
    ``any`` (also ``*``), or else a path substring/glob used as is. Each ``PART`` is:

    * a bare HTTP status code, e.g. ``429`` (same as ``status=429``);
    * a flag: ``reset``, ``empty`` (``empty_body``), ``unauthorized``, ``html``
      (``content_type=text/html``);
    * ``KEY=VALUE`` with KEY one of ``status``, ``times``, ``retry_after``,
      ``message``, ``stall`` (seconds, float), ``after``, ``cut``/``cut_after``,
      ``malformed``/``malformed_after``, ``error``/``stream_error_after``,
      ``content_type``. ``retry_after``, ``message`` and ``content_type`` values may
      contain ``:``.

    Examples: ``chat:429:retry_after=2:times=3``, ``oauth:reset:times=1``,
    ``chat:cut=3``, ``chat:stall=5:after=2``, ``models:503``, ``chat:error=1``,
    ``any:html``, ``chat:503:retry_after=Wed, 21 Oct 2015 07:28:00 GMT``. Inside a
    ``retry_after``/``message``/``content_type`` value a bare number continues the
    value, so put the status code before them (or write ``status=N``).

    Raises:
        ValueError: naming the part that could not be understood.
    """
    target, parts = _split(spec.strip())
    if not target:
        raise ValueError("fault spec %r has an empty target" % spec)
    fields: Dict[str, Any] = {"path": _TARGETS.get(target, target)}
    for part in parts:
        if part.isdigit():
            part = "status=" + part
        if part in _FLAGS:
            if part == "html":
                fields["content_type"] = "text/html"
            else:
                fields[_FLAGS[part]] = True
            continue
        key, eq, value = part.partition("=")
        if not eq or key not in _KEYS:
            raise ValueError("fault spec %r: unknown part %r" % (spec, part))
        name = _KEYS[key]
        if name in fields:
            raise ValueError("fault spec %r: %r given twice" % (spec, key))
        try:
            if name == "stall":
                fields[name] = float(value)
            elif name in _GREEDY:
                if not value:
                    raise ValueError(value)
                fields[name] = value
            else:
                fields[name] = int(value)
        except ValueError:
            raise ValueError("fault spec %r: bad value in %r" % (spec, part)) from None
    try:
        return Fault(**fields)
    except ValueError as exc:
        raise ValueError("fault spec %r: %s" % (spec, exc)) from None
