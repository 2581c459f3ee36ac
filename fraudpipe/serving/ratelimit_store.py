"""Sliding-log rate limiting over several identities at once, in memory or in Redis.

A request is answered only if, for every identity it counts against, fewer than ``limit`` requests were
answered in the ``window`` before it. No interval of one window's length can then hold more than the
limit; a fixed window lets up to twice the limit through across its boundary. Each identity keeps only
its last ``limit`` answer times, so the oldest of them says exactly when the next request is allowed.

All identities are checked and recorded together: in Redis by one Lua script (one round trip, atomic
across workers, timed by the Redis clock so workers on different hosts agree), in memory under one lock.
A refused request records nothing, so knocking on a closed door does not keep it closed.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import limits

MICROS = 1_000_000


class StoreUnavailable(Exception):
    """The shared counts cannot be read: the caller must refuse, not guess."""


@dataclass(frozen=True)
class Rate:
    limit: int
    window_us: int

    @classmethod
    def parse(cls, text: str) -> "Rate":
        item = limits.parse(text)
        return cls(int(item.amount), int(item.get_expiry() * MICROS))


class MemoryLog:
    """One process's exact sliding logs: right for a single worker and for tests, wrong for several
    workers (each would count alone; ``serve`` refuses that combination)."""

    SWEEP_EVERY = 4096

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._logs: dict[str, deque[int]] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def acquire(self, identities: Sequence[str]) -> float:
        """0.0 when the request is allowed (and recorded), else the seconds until it would be."""
        now = round(self._clock() * MICROS)
        limit, window = self.rate.limit, self.rate.window_us
        with self._lock:
            logs = [self._logs.setdefault(name, deque(maxlen=limit)) for name in identities]
            wait = max((log[0] + window - now for log in logs if len(log) == limit), default=0)
            if wait > 0:
                return wait / MICROS
            for log in logs:
                log.append(now)
            self._calls += 1
            if self._calls % self.SWEEP_EVERY == 0:
                self._sweep(now)
            return 0.0

    def _sweep(self, now: int) -> None:
        """Forget identities whose newest answer has left the window, so many addresses do not grow memory."""
        stale = [name for name, log in self._logs.items() if not log or log[-1] + self.rate.window_us <= now]
        for name in stale:
            del self._logs[name]

    def ready(self) -> str | None:
        return None


# KEYS: one list per identity, newest answer time first, at most ``limit`` long.
# ARGV: limit, window in microseconds. Returns 0 when allowed (and recorded), else microseconds to wait.
ACQUIRE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = 0
for _, key in ipairs(KEYS) do
  local count = redis.call('LLEN', key)
  if count >= limit then
    if count > limit then redis.call('LTRIM', key, 0, limit - 1) end
    local free_at = tonumber(redis.call('LINDEX', key, -1)) + window
    if free_at - now > wait then wait = free_at - now end
  end
end
if wait > 0 then return wait end
local stamp = string.format('%d', now)
local ttl = math.ceil(window / 1000)
for _, key in ipairs(KEYS) do
  if redis.call('LPUSH', key, stamp) > limit then redis.call('RPOP', key) end
  redis.call('PEXPIRE', key, ttl)
end
return 0
"""


class RedisLog:
    """The same sliding logs in Redis, shared by every worker; one EVALSHA per request.

    Each thread (and each forked worker) keeps its own connection and sends EVALSHA on it directly:
    redis-py's pool and command wrappers cost more than the round trip itself (measured: 79 µs per call
    through ``Script.__call__``, 33-39 µs on a held connection). Short timeouts and no retries: a Redis
    that is down or slow becomes ``StoreUnavailable`` within a fraction of a second, and for ``pause``
    seconds after a failure requests are refused without trying, so an unreachable host does not hold
    every worker for a connect timeout per request.
    """

    pause = 1.0

    def __init__(self, rate: Rate, url: str, prefix: str = "fraudpipe:rl:", timeout: float = 0.5) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.exceptions import NoScriptError
        from redis.retry import Retry

        self.rate = rate
        self._prefix = prefix
        self._errors = (redis.RedisError, OSError)
        self._no_script = NoScriptError
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           retry=Retry(NoBackoff(), 0))
        self._sha = self.client.register_script(ACQUIRE_LUA).sha
        self._args = (rate.limit, rate.window_us)
        self._tail = b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in (b"%d" % value for value in self._args))
        self._local = threading.local()
        self._failed_at = -math.inf

    def _connection(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            pool = self.client.connection_pool
            local.connection, local.pid = pool.connection_class(**pool.connection_kwargs), os.getpid()
        return local.connection

    def _packed(self, identities: Sequence[str]) -> bytes:
        """EVALSHA in the protocol's own framing: redis-py's generic packer costs more than the write."""
        keys = [(self._prefix + name).encode() for name in identities]
        head = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n" % (len(keys) + 5, self._sha.encode())
        count = b"%d" % len(keys)
        return b"".join([head, b"$%d\r\n%s\r\n" % (len(count), count),
                         *(b"$%d\r\n%s\r\n" % (len(key), key) for key in keys), self._tail])

    def acquire(self, identities: Sequence[str]) -> float:
        if time.monotonic() - self._failed_at < self.pause:
            raise StoreUnavailable("rate-limit storage unreachable (failed moments ago)")
        connection = self._connection()
        try:
            connection.send_packed_command([self._packed(identities)], check_health=False)
            try:
                wait = connection.read_response()
            except self._no_script:
                connection.send_command("EVAL", ACQUIRE_LUA, len(identities),
                                        *(self._prefix + name for name in identities), *self._args)
                wait = connection.read_response()
        except self._errors as exc:
            connection.disconnect()
            self._failed_at = time.monotonic()
            raise StoreUnavailable(f"rate-limit storage unreachable ({type(exc).__name__})") from None
        return int(wait) / MICROS

    def ready(self) -> str | None:
        try:
            self.client.ping()
        except self._errors as exc:
            return f"rate-limit storage unreachable ({type(exc).__name__})"
        return None


def open_store(url: str, rate: Rate) -> MemoryLog | RedisLog:
    """``memory://`` or ``redis://host:port`` (settings has already refused anything else)."""
    if url.startswith("memory://"):
        return MemoryLog(rate)
    return RedisLog(rate, url)
