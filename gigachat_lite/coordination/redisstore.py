"""The Redis backend: processes on many hosts coordinate through one Redis.

Every operation is one round trip and atomic on the server: plain values use
``SET NX PX`` / ``GET``; compare-and-delete, cool-downs, leases and the rate
window are short Lua scripts. Leases and rate windows are sorted sets scored
by expiry (or hit time) in milliseconds of the *Redis server's* clock
(``TIME``), so hosts whose clocks disagree still agree on who holds a slot.

Keys are ``<prefix><name>`` (prefix ``gigachat_lite:`` by default); each has a
Redis TTL, so nothing outlives its use. The client runs with connect and read
timeouts and one immediate retry (a pooled connection may be stale after a
Redis restart): an unreachable Redis raises :class:`CoordinationError`
within about twice the timeout, never hangs.

``redis`` (the PyPI package) is imported only when a RedisStore is created.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional
from urllib.parse import urlsplit, urlunsplit

from .errors import CoordinationError
from .store import Store, check_name

__all__ = ["RedisStore", "redact_url"]

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
_LEASE_ACQUIRE = _PRELUDE + _NOW + """
local limit, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return 1
"""
_LEASE_RENEW = _PRELUDE + _NOW + """
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl * 2 then redis.call('PEXPIRE', KEYS[1], ttl * 2) end
return 1
"""
_LEASE_COUNT = _NOW + """
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
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
    """``url`` with any password replaced by ``***`` (for messages and reprs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


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
        self._errors = (redis.RedisError, OSError)
        try:
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),
                decode_responses=True,
            )
        except ValueError as exc:
            raise ValueError(f"coordination: invalid Redis URL {self.url}: {exc}") from None
        self._scripts = {
            name: self._client.register_script(source)
            for name, source in (
                ("delete_if", _DELETE_IF), ("extend", _EXTEND), ("lease_acquire", _LEASE_ACQUIRE),
                ("lease_renew", _LEASE_RENEW), ("lease_count", _LEASE_COUNT), ("rate_hit", _RATE_HIT),
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

    def lease_renew(self, name: str, holder: str, ttl: float) -> bool:
        return bool(self._script("lease_renew", [self._key(name)], [holder, _ms(ttl)]))

    def lease_release(self, name: str, holder: str) -> None:
        self._run(lambda: self._client.zrem(self._key(name), holder))

    def lease_count(self, name: str) -> int:
        return int(self._script("lease_count", [self._key(name)], []))

    def rate_hit(self, name: str, limit: int, window: float) -> float:
        key = self._key(name)
        wait = self._script("rate_hit", [key, key + ".seq"], [limit, _ms(window)])
        return int(wait) / 1000.0

    def close(self) -> None:
        self._run(self._client.close)
