"""The Redis backend: processes on many hosts coordinate through one Redis.

Every operation is one round trip and atomic on the server: plain values use
``SET NX PX`` / ``GET``; compare-and-delete, cool-downs, leases and the rate
window are short Lua scripts. Leases and rate windows are sorted sets scored
by expiry (or hit time) in milliseconds of the *Redis server's* clock
(``TIME``), so hosts whose clocks disagree still agree on who holds a slot.

**Waiting for a slot**, first come, first served (the rules are in
:mod:`._slots`): for a lease set ``K``, ``K.q`` is a sorted set of waiters
scored by a ticket from ``INCR K.seq`` (arrival order), ``K.w`` a hash of each
waiter's expiry and limit. Joining, releasing and renewing hand free slots to
the head of ``K.q`` inside the script, which pushes a wake-up onto that
waiter's own list, ``K.wake.<holder>``; the waiter sleeps in ``BLPOP`` on it,
so it runs one round trip after the release, without polling (a waiter whose
call is cancelled is woken the same way, by its own process pushing a ``0``
rather than the ``1`` of a slot handed over). A waiter renews
its place every third of the TTL (each ``BLPOP`` times out by then), so one
that died drops out within the TTL. Needs Redis 6 or later (``BLPOP`` with a
fractional timeout); the keys of one limit are named from one another inside
the scripts, so Redis Cluster is not supported.

Keys are ``<prefix><name>`` (prefix ``gigachat_lite:`` by default); each has a
Redis TTL, so nothing outlives its use. The client runs with connect and read
timeouts, and retries a command once at once after a connection error (a
pooled connection may be stale after a Redis restart) but never after a
timeout: a Redis that is down or stops answering (frozen, partitioned)
raises :class:`CoordinationError` within the timeout, never hangs. A
``BLPOP`` is read within its own block plus the timeout, so a waiter on a
frozen Redis fails at the end of its nap plus the timeout at the latest. A lease that Redis lost (it
restarted empty) is taken back by its holder's next renewal while a slot is
free; only a caller arriving before that renewal (a third of the TTL at most)
can take the slot first, and then the holder learns it lost it.

``redis`` (the PyPI package) is imported only when a RedisStore is created.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, List, Optional
from urllib.parse import urlsplit, urlunsplit

from .errors import CoordinationError
from .store import Store, check_name

__all__ = ["RedisStore", "redact_url"]

log = logging.getLogger("gigachat_lite.coordination")

# Effects replication is the default from Redis 5 on; scripts that read TIME
# and then write need it, so they ask for it explicitly on older servers.
_PRELUDE = "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
_NOW = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('SET', KEYS[1], '1', 'PX', ttl) end
return 1
"""
# Serve the queue of lease set K (see _slots.py): while the head waiter (alive) fits under its
# limit, move it to the leases with its own expiry and push its wake-up (not the caller's: it
# learns from the script's answer). A dead head is dropped; waiters behind it are purged in turn.
_PROMOTE = """
local function promote(K, now, caller)
  local q, w = K .. '.q', K .. '.w'
  while true do
    local head = redis.call('ZRANGE', q, 0, 0)
    if #head == 0 then return end
    local h = head[1]
    local info = redis.call('HGET', w, h)
    local expires, limit = 0, 0
    if info then
      local space = string.find(info, ' ')
      expires, limit = tonumber(string.sub(info, 1, space - 1)), tonumber(string.sub(info, space + 1))
    end
    if expires <= now then
      redis.call('ZREM', q, h)
      redis.call('HDEL', w, h)
    elseif redis.call('ZCARD', K) < limit then
      redis.call('ZREM', q, h)
      redis.call('HDEL', w, h)
      redis.call('ZADD', K, expires, h)
      if redis.call('PTTL', K) < (expires - now) * 2 then redis.call('PEXPIRE', K, (expires - now) * 2) end
      if h ~= caller then
        local wake = K .. '.wake.' .. h
        redis.call('RPUSH', wake, '1')
        redis.call('PEXPIRE', wake, expires - now + 1000)
      end
    else
      return
    end
  end
end
"""
_LEASE_ACQUIRE = _PRELUDE + _NOW + _PROMOTE + """
local K, holder, limit, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', K, '-inf', now)
if not redis.call('ZSCORE', K, holder) then
  promote(K, now, nil)
  if redis.call('ZCARD', K .. '.q') > 0 or redis.call('ZCARD', K) >= limit then return 0 end
end
redis.call('ZADD', K, now + ttl, holder)
if redis.call('PTTL', K) < ttl * 2 then redis.call('PEXPIRE', K, ttl * 2) end
return 1
"""
_LEASE_QUEUE = _PRELUDE + _NOW + _PROMOTE + """
local K, holder, limit, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local q, w, seq, wake = K .. '.q', K .. '.w', K .. '.seq', K .. '.wake.' .. holder
redis.call('ZREMRANGEBYSCORE', K, '-inf', now)
if redis.call('ZSCORE', K, holder) then
  redis.call('DEL', wake)  -- served while it was not looking: its wake-up is not needed
  return -1
end
if not redis.call('ZSCORE', q, holder) then redis.call('ZADD', q, redis.call('INCR', seq), holder) end
redis.call('HSET', w, holder, string.format('%d %d', now + ttl, limit))
for _, key in ipairs({q, w, seq}) do redis.call('PEXPIRE', key, ttl * 2) end
promote(K, now, holder)
if redis.call('ZSCORE', K, holder) then return -1 end
local first = redis.call('ZRANGE', K, 0, 0, 'WITHSCORES')
if #first == 0 then return ttl end
return math.max(tonumber(first[2]) - now, 0)
"""
_LEASE_LEAVE = _PRELUDE + _NOW + """
local K, holder = KEYS[1], ARGV[1]
redis.call('ZREM', K .. '.q', holder)
redis.call('HDEL', K .. '.w', holder)
redis.call('DEL', K .. '.wake.' .. holder)
local expires = redis.call('ZSCORE', K, holder)
if expires and tonumber(expires) > now then return 1 end
return 0
"""
# A cancelled waiter's own wake-up, pushed only while it still queues (not served, not gone).
_LEASE_INTERRUPT = """
local K, holder = KEYS[1], ARGV[1]
if redis.call('HEXISTS', K .. '.w', holder) == 0 then return 0 end
local wake = K .. '.wake.' .. holder
redis.call('RPUSH', wake, '0')
redis.call('PEXPIRE', wake, tonumber(ARGV[2]))
return 1
"""
_LEASE_RELEASE = _PRELUDE + _NOW + _PROMOTE + """
local K = KEYS[1]
redis.call('ZREM', K, ARGV[1])
redis.call('ZREMRANGEBYSCORE', K, '-inf', now)
promote(K, now, nil)
return 1
"""
# 1: renewed; 2: it was gone (Redis restarted empty, or the holder stalled past the TTL) and a
# slot was free, so it is taken back; 0: lost.
_LEASE_RENEW = _PRELUDE + _NOW + """
local K, holder, ttl, limit = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', K, '-inf', now)
local result = 1
if not redis.call('ZSCORE', K, holder) then
  if limit < 1 or redis.call('ZCARD', K) >= limit then return 0 end
  result = 2
end
redis.call('ZADD', K, now + ttl, holder)
if redis.call('PTTL', K) < ttl * 2 then redis.call('PEXPIRE', K, ttl * 2) end
return result
"""
_LEASE_COUNT = _NOW + """
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""
_LEASE_WAITING = _NOW + """
local waiting, info = 0, redis.call('HVALS', KEYS[1] .. '.w')
for _, entry in ipairs(info) do
  if tonumber(string.sub(entry, 1, string.find(entry, ' ') - 1)) > now then waiting = waiting + 1 end
end
return waiting
"""
_RATE_HIT = _PRELUDE + _NOW + """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], window)
  redis.call('ZADD', KEYS[1], now, now .. '-' .. seq)
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(tonumber(oldest[2]) + window - now, 1)
"""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and reprs).

    Both places redis-py takes one from: ``user:password@`` and the query
    (``?password=...``, which it passes to the connection as is); so any query
    value whose name speaks of a secret is hidden too.
    """
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
    if query:
        query = "&".join(_redact_pair(pair) for pair in query.split("&"))
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_SECRET_NAMES = ("pass", "secret", "token", "auth", "cred")


def _redact_pair(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    return f"{name}=***" if equals and any(word in name.lower() for word in _SECRET_NAMES) else pair


# The longest one BLPOP blocks; its reply is awaited this plus the store's timeout at most.
_MAX_BLOCK = 5.0


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


class RedisStore(Store):
    """A store in Redis, shared by every host that reaches it.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://...`` (TLS, verified).
        timeout: connect and read timeout in seconds for every Redis command.
        prefix: prepended to every key, so several applications can share a Redis.
    """

    def __init__(self, url: str, *, timeout: float = 2.0, prefix: str = "gigachat_lite:") -> None:
        # Lazy: redis is an optional extra, and importing it costs ~40 ms.
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = redact_url(url)
        self._prefix = prefix
        self._timeout = timeout
        self._errors = (redis.RedisError, OSError)
        self._redis_timeout: Any = redis.TimeoutError
        try:
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                # Not after a timeout: a frozen Redis would hold every call for twice the timeout.
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                decode_responses=True,
            )
            # redis-py passes the URL's query on as connection keywords, checked only when it connects
            # (a TypeError then): a connection object made now, with no I/O, names a bad one at once.
            pool = self._client.connection_pool
            pool.connection_class(**pool.connection_kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"coordination: invalid Redis URL {self.url}: {exc}") from None
        self._scripts = {
            name: self._client.register_script(source)
            for name, source in (
                ("delete_if", _DELETE_IF), ("extend", _EXTEND), ("lease_acquire", _LEASE_ACQUIRE),
                ("lease_renew", _LEASE_RENEW), ("lease_count", _LEASE_COUNT), ("rate_hit", _RATE_HIT),
                ("lease_queue", _LEASE_QUEUE), ("lease_leave", _LEASE_LEAVE), ("lease_release", _LEASE_RELEASE),
                ("lease_waiting", _LEASE_WAITING), ("lease_interrupt", _LEASE_INTERRUPT),
            )
        }

    def _key(self, name: str) -> str:
        return self._prefix + check_name(name)

    def _run(self, what: Callable[[], Any]) -> Any:
        try:
            return what()
        except self._errors as exc:
            raise CoordinationError(f"the coordination store {self.url} failed: {type(exc).__name__}: {exc}") from exc

    def _script(self, name: str, keys: List[str], args: List[Any]) -> Any:
        script = self._scripts[name]
        return self._run(lambda: script(keys=keys, args=args))

    def ping(self) -> None:
        """Check that Redis answers; raise :class:`CoordinationError` if not."""
        self._run(self._client.ping)

    def get(self, name: str) -> Optional[str]:
        value = self._run(lambda: self._client.get(self._key(name)))
        return value if isinstance(value, str) else None

    def set(self, name: str, value: str, ttl: float) -> None:
        self._run(lambda: self._client.set(self._key(name), value, px=_ms(ttl)))

    def add(self, name: str, value: str, ttl: float) -> bool:
        return bool(self._run(lambda: self._client.set(self._key(name), value, px=_ms(ttl), nx=True)))

    def delete(self, name: str, expected: Optional[str] = None) -> bool:
        if expected is None:
            return bool(self._run(lambda: self._client.delete(self._key(name))))
        return bool(self._script("delete_if", [self._key(name)], [expected]))

    def extend(self, name: str, ttl: float) -> None:
        self._script("extend", [self._key(name)], [_ms(ttl)])

    def remaining(self, name: str) -> float:
        left = self._run(lambda: self._client.pttl(self._key(name)))
        return left / 1000.0 if isinstance(left, int) and left > 0 else 0.0

    def lease_acquire(self, name: str, holder: str, limit: int, ttl: float) -> bool:
        return bool(self._script("lease_acquire", [self._key(name)], [holder, limit, _ms(ttl)]))

    def lease_renew(self, name: str, holder: str, ttl: float, limit: int = 0) -> bool:
        return bool(self._script("lease_renew", [self._key(name)], [holder, _ms(ttl), limit]))

    def lease_release(self, name: str, holder: str) -> None:
        self._script("lease_release", [self._key(name)], [holder])

    def lease_waiting(self, name: str) -> int:
        return int(self._script("lease_waiting", [self._key(name)], []))

    def lease_queue(self, name: str, holder: str, limit: int, ttl: float) -> Optional[float]:
        hint = int(self._script("lease_queue", [self._key(name)], [holder, limit, _ms(ttl)]))
        return None if hint < 0 else hint / 1000.0

    def lease_wait(self, name: str, holder: str, seconds: float) -> bool:
        seconds = min(seconds, _MAX_BLOCK)
        if seconds < 0.001:
            return False  # BLPOP's 0 would block for ever
        wake = self._key(name) + ".wake." + check_name(holder)
        popped = self._run(lambda: self._blpop(wake, round(seconds, 3)))
        return popped is not None and popped[1] == "1"  # "0": lease_interrupt's, not served

    def _blpop(self, key: str, seconds: float) -> Any:
        # By hand rather than client.blpop: redis-py awaits every reply within one socket timeout for
        # the connection, which a BLPOP must outlast by its block, so a frozen Redis held a waiter for
        # its longest block plus the timeout (twice, with the retry) whatever its nap. Here the reply is
        # awaited for this nap plus the timeout (can_read's own timeout), and never retried.
        pool = self._client.connection_pool
        connection: Any  # redis-py's own annotations are partial
        try:
            connection = pool.get_connection()
        except TypeError:  # redis-py before 5.3 wants the command's name
            connection = pool.get_connection("BLPOP")
        try:
            connection.send_command("BLPOP", key, seconds)
            if not connection.can_read(timeout=seconds + self._timeout):
                raise self._redis_timeout(f"no reply to BLPOP within {seconds + self._timeout:g} s")
            return connection.read_response()
        except BaseException:
            connection.disconnect()  # its reply may still come: no other command may read it
            raise
        finally:
            pool.release(connection)

    def lease_interrupt(self, name: str, holder: str) -> None:
        # A round trip may take the whole socket timeout (Redis frozen), and the caller may be the
        # event loop or a finaliser: it runs in a thread of its own (cancellations are rare).
        key, wait = self._key(name), _ms(self._timeout + _MAX_BLOCK)
        threading.Thread(target=self._interrupt, args=(key, holder, wait), name="gigachat_lite-lease-interrupt",
                         daemon=True).start()

    def _interrupt(self, key: str, holder: str, ttl_ms: int) -> None:
        try:
            self._script("lease_interrupt", [key], [holder, ttl_ms])
        except CoordinationError as exc:  # the waiter wakes at its heartbeat then, or fails on the same store
            log.warning("could not wake a cancelled waiter for a concurrency slot: %s", exc)

    def lease_leave(self, name: str, holder: str) -> bool:
        return bool(self._script("lease_leave", [self._key(name)], [holder]))

    def lease_count(self, name: str) -> int:
        return int(self._script("lease_count", [self._key(name)], []))

    def rate_hit(self, name: str, limit: int, window: float) -> float:
        key = self._key(name)
        wait = self._script("rate_hit", [key, key + ".seq"], [limit, _ms(window)])
        return int(wait) / 1000.0

    def close(self) -> None:
        self._run(self._client.close)
