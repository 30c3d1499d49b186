"""One key's slots as plain data: the leases held, and the waiters in arrival order.

The memory and file stores keep a :class:`Slots` per key (in a dict, or as
JSON in the key's file) and change it under their lock; the Redis store keeps
the same table in Redis and changes it with Lua scripts that follow the same
rules (see :mod:`.redisstore`):

* A **lease** is ``holder -> (written, expires)``; a **waiter** is ``(holder,
  written, expires, limit)``, kept in arrival order. Both live while
  ``written <= now < expires`` on the store's clock: an entry stamped after
  ``now`` was written under another boot of a monotonic clock, so it is dead,
  and no entry outlives the duration it was written for.
* A waiter renews its place every third of the TTL while it waits; one that
  dies or stops renewing drops out when its ``expires`` passes.
* Whenever a slot may be free (a waiter joins or renews, a lease is released
  or found expired), the head of the queue gets it, for as long as fewer than
  that waiter's ``limit`` leases are held: **first come, first served**. The
  store wakes the waiter (``notify``); a waiter it cannot wake (its process is
  gone) is skipped at once. The lease granted to a waiter expires when the
  waiter's place would have, so a waiter that died just before its turn holds
  the slot no longer than the lease TTL.
* A holder that renews a lease the store no longer has (the store restarted
  empty, or the holder stalled past the TTL) takes it back if a slot is free,
  ahead of the queue, since its request is still in flight on the server.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

__all__ = ["Slots", "Waiter", "RENEWED", "RECLAIMED", "LOST"]

#: what :meth:`Slots.renew` found
LOST, RENEWED, RECLAIMED = 0, 1, 2

Notify = Callable[[str], bool]


class Waiter(NamedTuple):
    holder: str
    written: float
    expires: float
    limit: int


def _alive(written: float, expires: float, now: float) -> bool:
    return written <= now < expires


def _number(value: Any) -> bool:
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an int past floats
        return False


class Slots:
    """The leases and the FIFO queue of one key (see the module docstring)."""

    __slots__ = ("leases", "queue")

    def __init__(self) -> None:
        self.leases: Dict[str, Tuple[float, float]] = {}
        self.queue: List[Waiter] = []

    # -- JSON form (the file store) ----------------------------------------------------------------

    @classmethod
    def from_json(cls, data: Any) -> "Slots":
        """The table stored as ``data``; anything malformed in it counts as absent."""
        slots = cls()
        if not isinstance(data, dict):
            return slots
        leases, queue = data.get("leases", {}), data.get("queue", [])
        try:  # the table as this module writes it, read at full speed: it is read on every call
            slots.leases = {str(h): (float(w), float(x)) for h, (w, x) in leases.items()}
            slots.queue = [Waiter(str(h), float(w), float(x), int(limit)) for h, w, x, limit in queue]
            if not math.isfinite(sum(w + x for w, x in slots.leases.values()) + sum(w[1] + w[2] for w in slots.queue)):
                raise ValueError("a time that is not finite")  # inf or nan: such an entry would never expire
        except (TypeError, ValueError, AttributeError, OverflowError):  # not (1e400 reads as inf): keep what can be read
            slots.leases, slots.queue = {}, []
            if isinstance(leases, dict):
                for holder, stamps in leases.items():
                    if isinstance(stamps, list) and len(stamps) == 2 and all(map(_number, stamps)):
                        slots.leases[holder] = (float(stamps[0]), float(stamps[1]))
            if isinstance(queue, list):
                for entry in queue:
                    if (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str)
                            and all(map(_number, entry[1:]))):
                        slots.queue.append(Waiter(entry[0], float(entry[1]), float(entry[2]), int(entry[3])))
        slots.queue = [w for w in slots.queue if w.limit >= 1]
        return slots

    def to_json(self) -> Dict[str, Any]:
        """The JSON-able form; ``{}`` when nothing is held or awaited."""
        data: Dict[str, Any] = {}
        if self.leases:
            data["leases"] = {holder: list(stamps) for holder, stamps in self.leases.items()}
        if self.queue:
            data["queue"] = [list(waiter) for waiter in self.queue]
        return data

    def __bool__(self) -> bool:
        return bool(self.leases or self.queue)

    # -- the rules ---------------------------------------------------------------------------------

    def purge(self, now: float) -> List[str]:
        """Drop expired leases and waiters; return the waiters dropped (their wake-ups can go)."""
        for holder in [h for h, (written, expires) in self.leases.items() if not _alive(written, expires, now)]:
            del self.leases[holder]
        dropped = [w.holder for w in self.queue if not _alive(w.written, w.expires, now)]
        if dropped:
            self.queue = [w for w in self.queue if _alive(w.written, w.expires, now)]
        return dropped

    def promote(self, now: float, notify: Notify, caller: Optional[str] = None) -> None:
        """Hand free slots to the head of the queue, waking each waiter served (``caller`` learns it from the return)."""
        while self.queue and len(self.leases) < self.queue[0].limit:
            waiter = self.queue.pop(0)
            if waiter.holder != caller and not notify(waiter.holder):
                continue  # its process is gone: the next waiter's turn, now
            self.leases[waiter.holder] = (now, waiter.expires)

    def acquire(self, holder: str, limit: int, ttl: float, now: float) -> bool:
        """Take a lease at once if one is free and nobody waits for it (or renew ``holder``'s own)."""
        self.purge(now)
        if holder in self.leases or (not self.queue and len(self.leases) < limit):
            self.leases[holder] = (now, now + ttl)
            return True
        return False

    def join(self, holder: str, limit: int, ttl: float, now: float, notify: Notify) -> bool:
        """Queue ``holder`` (or renew its place) and serve the queue; True once it holds a lease."""
        self.purge(now)
        if holder in self.leases:
            return True
        for index, waiter in enumerate(self.queue):
            if waiter.holder == holder:
                self.queue[index] = Waiter(holder, now, now + ttl, limit)
                break
        else:
            self.queue.append(Waiter(holder, now, now + ttl, limit))
        self.promote(now, notify, caller=holder)
        return holder in self.leases

    def leave(self, holder: str, now: float) -> bool:
        """Take ``holder`` out of the queue; True if it was served first (it holds a lease)."""
        self.queue = [w for w in self.queue if w.holder != holder]
        stamps = self.leases.get(holder)
        return stamps is not None and _alive(stamps[0], stamps[1], now)

    def renew(self, holder: str, ttl: float, limit: int, now: float) -> int:
        """Push ``holder``'s lease ``ttl`` ahead: :data:`RENEWED`, :data:`RECLAIMED` (it was gone, a slot was free) or :data:`LOST`."""
        self.purge(now)
        if holder in self.leases:
            self.leases[holder] = (now, now + ttl)
            return RENEWED
        if limit >= 1 and len(self.leases) < limit:
            self.leases[holder] = (now, now + ttl)
            return RECLAIMED
        return LOST

    def release(self, holder: str, now: float, notify: Notify) -> None:
        """Drop ``holder``'s lease and serve the queue."""
        self.leases.pop(holder, None)
        self.purge(now)
        self.promote(now, notify)

    def count(self, now: float) -> int:
        return sum(1 for written, expires in self.leases.values() if _alive(written, expires, now))

    def waiting(self, now: float) -> int:
        return sum(1 for waiter in self.queue if _alive(waiter.written, waiter.expires, now))

    def next_expiry(self, now: float, default: float) -> float:
        """Seconds until the first lease expires (a dead holder's slot frees then); ``default`` if none is held."""
        soonest = min((expires for _, expires in self.leases.values()), default=None)
        return default if soonest is None else max(soonest - now, 0.0)
