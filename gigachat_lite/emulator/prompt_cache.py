"""GigaChat's prompt cache, emulated: a repeated prompt prefix under one ``X-Session-ID``.

GigaChat keeps the context of a request cached for a while and reports the reused
part: v1 ``usage.precached_prompt_tokens`` (taken out of ``prompt_tokens`` and
``total_tokens``), v2 ``usage.input_tokens_details.cached_tokens``. gpt2giga measured a
lifetime of about 30 s after the last hit and up to ~99 % reuse of a long repeated
prefix (``reference/API_FACTS.md`` section 3).

The emulation, deterministic so tests can predict it:

* a prompt is a sequence of emulated tokens, ``(role, piece)`` pairs, one per
  ``piece_size`` characters of each message (v2: of each content part);
* under a session id, the cached count is the longest prefix the prompt shares with
  a sequence remembered for that id: an earlier prompt followed by its reply, so the
  next turn of a conversation finds the previous turn cached;
* at most ``prompt tokens - 1``: the model always computes the last token;
* a session's memory lasts :attr:`PromptCache.ttl` seconds (default 30) after its last
  request; no ``X-Session-ID``, no cache (the real service may still hit by chance).
"""

import threading
import time
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple

Units = Tuple[Hashable, ...]

#: Sequences remembered per session: enough for a few interleaved conversations.
PER_SESSION = 8
#: Sessions remembered at once; expired ones are dropped first.
MAX_SESSIONS = 4096


def common_prefix(one: Sequence[Hashable], other: Sequence[Hashable]) -> int:
    """How many leading items two sequences share."""
    count = 0
    for mine, theirs in zip(one, other):
        if mine != theirs:
            break
        count += 1
    return count


class PromptCache:
    """Per-session prompt prefixes with a lifetime; every method is thread-safe.

    ``ttl`` (seconds, settable) is how long a session's prefixes outlive its last
    request; ``clock`` is monotonic seconds (a test may pass its own).
    """

    def __init__(self, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = float(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: Dict[str, Tuple[float, List[Units]]] = {}

    def lookup(self, session: Optional[str], prompt: Sequence[Hashable]) -> int:
        """The cached tokens of ``prompt`` under ``session`` (0 without a session id)."""
        if not session or len(prompt) < 2:
            return 0
        now = self._clock()
        with self._lock:
            found = self._sessions.get(session)
            if found is None or now - found[0] > self.ttl:
                return 0
            best = max((common_prefix(prompt, seen) for seen in found[1]), default=0)
        return min(best, len(prompt) - 1)

    def remember(self, session: Optional[str], sequence: Sequence[Hashable]) -> None:
        """Keep ``sequence`` (a prompt and its reply) for ``session``; renews its lifetime."""
        if not session:
            return
        now = self._clock()
        with self._lock:
            found = self._sessions.pop(session, None)
            kept = [] if found is None or now - found[0] > self.ttl else found[1]
            kept = ([tuple(sequence)] + [s for s in kept if s != tuple(sequence)])[:PER_SESSION]
            self._sessions[session] = (now, kept)
            if len(self._sessions) > MAX_SESSIONS:
                self._prune(now)

    def forget(self) -> None:
        """Drop every session's prefixes."""
        with self._lock:
            self._sessions.clear()

    def _prune(self, now: float) -> None:
        for name in [n for n, (seen, _) in self._sessions.items() if now - seen > self.ttl]:
            del self._sessions[name]
        while len(self._sessions) > MAX_SESSIONS:  # all alive: the oldest go (dicts keep order)
            del self._sessions[next(iter(self._sessions))]

    def __repr__(self) -> str:
        with self._lock:
            count = len(self._sessions)
        return "<PromptCache ttl=%gs, %d sessions>" % (self.ttl, count)
