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
import uuid
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


# KEYS: one list per identity, newest stamp first, at most ``limit`` long; last, the deployment's host set.
# ARGV: limit, window, lease (both microseconds), slots wanted. A grant made at Redis time t is stamped
# t + lease: every slot it grants is used by then, so counting stamps newer than t - window at each grant
# keeps every interval of one window's length at or under the limit, however late a slot is used.
# Grants ``wanted`` slots, halved until twice the grant is free: near the limit grants shrink to one
# slot, so few slots sit unused in one worker while another worker refuses the same client.
# ARGV[5], ARGV[6]: slots of an expired lease the worker did not use, and their stamp: given back first.
# ARGV[7], ARGV[8]: this host's id, and how long (microseconds) a host counts as serving after its last call.
# Returns {slots granted (> 0) or minus the microseconds until one is free, their stamp, hosts serving}.
ACQUIRE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local hosts_key, keys = KEYS[#KEYS], {unpack(KEYS, 1, #KEYS - 1)}
redis.call('ZADD', hosts_key, now, ARGV[7])
redis.call('ZREMRANGEBYSCORE', hosts_key, '-inf', now - tonumber(ARGV[8]))
local hosts = redis.call('ZCARD', hosts_key)
local limit, window, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function free_for(key, slots)
  if slots > limit then return false end
  local stamp = redis.call('LINDEX', key, limit - slots)
  return (not stamp) or tonumber(stamp) <= now - window
end
local slots, returned = tonumber(ARGV[4]), tonumber(ARGV[5])
if returned > 0 then
  for _, key in ipairs(keys) do redis.call('LREM', key, returned, ARGV[6]) end
end
for _, key in ipairs(keys) do
  while slots > 1 and not free_for(key, 2 * slots) do slots = math.floor(slots / 2) end
end
local wait = 0
if slots == 1 then
  for _, key in ipairs(keys) do
    local oldest = redis.call('LINDEX', key, limit - 1)
    if oldest and tonumber(oldest) + window - now > wait then wait = tonumber(oldest) + window - now end
  end
end
if wait > 0 then return {-wait, 0, hosts} end
local stamp, stamps = string.format('%d', now + lease), {}
for i = 1, slots do stamps[i] = stamp end
local ttl = math.ceil((window + lease) / 1000)
for _, key in ipairs(keys) do
  if redis.call('LPUSH', key, unpack(stamps)) > limit then redis.call('LTRIM', key, 0, limit - 1) end
  redis.call('PEXPIRE', key, ttl)
end
return {slots, stamp, hosts}
"""


@dataclass(slots=True)
class _Lease:
    """Slots one worker holds for one client, and how busy that client was in the last lease period."""
    remaining: int = 0
    stamp: bytes = b"0"
    valid_until: float = -math.inf
    period_start: float = -math.inf
    period_hits: int = 0
    last_period_hits: int = 0


class RedisLog:
    """The same sliding logs in Redis, shared by every worker: one EVALSHA per round trip.

    A client that sends many requests to one worker gets its slots in batches (a lease): the worker asks
    for as many as the client sent it in this lease period or the last, whichever is more (at most
    ``MAX_LEASE``), and answers from them for at most ``lease`` seconds; the grant is stamped at the
    lease's end. Slots a lease did not use go back with the worker's next call for that client; until
    then (or if the client never comes back to that worker) they count. Every stamp
    sits ``lease`` later, so a refused client waits up to ``lease`` longer (1 % of the window, at most
    50 ms), and a worker answers from a lease it holds for at most that long after Redis goes down. Near
    the limit grants shrink to one slot, so the first refusal comes where it would without leases.

    Each thread (and each forked worker) keeps its own connection and its own leases and sends EVALSHA
    on it directly: redis-py's pool and command wrappers cost more than the round trip itself. Short
    timeouts and no retries: a Redis that is down or slow becomes ``StoreUnavailable`` within a fraction
    of a second, and for ``pause`` seconds after a failure requests are refused without trying.
    """

    pause = 1.0
    MAX_LEASE = 256  # 64 cost a round trip every 64 answers to a client sending 4,000 a second to one worker
    HOST_SERVING_US = 60 * MICROS

    def __init__(self, rate: Rate, url: str, prefix: str = "fraudpipe:rl:", timeout: float = 0.5,
                 host_id: str | None = None) -> None:
        import redis
        from redis.exceptions import NoScriptError

        self.rate = rate
        self._prefix = prefix
        self._errors = (redis.RedisError, OSError)
        self._no_script = NoScriptError
        self.client = fail_fast_client(url, timeout)
        self._sha = self.client.register_script(ACQUIRE_LUA).sha
        self.lease = min(0.05, rate.window_us / MICROS / 100)
        self._args = (rate.limit, rate.window_us, round(self.lease * MICROS))
        self._args_bytes = [b"%d" % value for value in self._args]
        self._host = [(host_id or uuid.uuid4().hex).encode(), b"%d" % self.HOST_SERVING_US]
        self.hosts = 1  # the most hosts any call has seen serving the deployment (see ``monitor_host``)
        self._local = threading.local()
        self._failed_at = -math.inf

    def leave(self) -> None:
        """This host has stopped serving: off the hosts serving at once, so a host started in its place
        within the minute does not count it as a second host (and order its every answer in Redis)."""
        try:
            self.client.zrem(self._prefix + "hosts", self._host[0])
        except self._errors as exc:
            raise StoreUnavailable(f"rate-limit storage unreachable ({type(exc).__name__})") from None

    def _local_state(self):
        local = self._local
        if getattr(local, "pid", None) != this_process():  # a forked worker starts with no connection, no leases
            pool = self.client.connection_pool
            local.connection, local.leases, local.calls = pool.connection_class(**pool.connection_kwargs), {}, 0
            local.pid = this_process()
        return local

    def _packed(self, identities: Sequence[str], wanted: int, unused: int, stamp: bytes) -> bytes:
        """EVALSHA in the protocol's own framing: redis-py's generic packer costs more than the write."""
        keys = [(self._prefix + name).encode() for name in identities] + [self._prefix.encode() + b"hosts"]
        head = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n" % (len(keys) + 11, self._sha.encode())
        args = [b"%d" % len(keys), *keys, *self._args_bytes, b"%d" % wanted, b"%d" % unused, stamp, *self._host]
        return head + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)

    def acquire(self, identities: Sequence[str]) -> float:
        local = self._local_state()
        now = time.monotonic()
        lease = local.leases.get(key := tuple(identities))
        if lease is None:
            lease = local.leases[key] = _Lease()
            local.calls += 1
            if local.calls % 4096 == 0:
                self._sweep(local.leases, now)
        if now - lease.period_start >= self.lease:
            lease.last_period_hits = lease.period_hits if now - lease.period_start < 2 * self.lease else 0
            lease.period_start, lease.period_hits = now, 0
        lease.period_hits += 1
        if lease.remaining > 0 and now < lease.valid_until:
            lease.remaining -= 1
            return 0.0
        wanted = min(self.MAX_LEASE, max(lease.period_hits, lease.last_period_hits))
        unused, lease.remaining = lease.remaining, 0  # expired: given back, never to be used here
        granted, stamp = self._round_trip(local.connection, identities, wanted, unused, lease.stamp)
        if granted < 0:
            return -granted / MICROS
        lease.remaining, lease.stamp, lease.valid_until = granted - 1, stamp, now + self.lease
        return 0.0

    def _round_trip(self, connection, identities: Sequence[str], wanted: int, unused: int,
                    stamp: bytes) -> tuple[int, bytes]:
        if time.monotonic() - self._failed_at < self.pause:
            raise StoreUnavailable("rate-limit storage unreachable (failed moments ago)")
        try:
            connection.send_packed_command([self._packed(identities, wanted, unused, stamp)], check_health=False)
            try:
                granted, stamp, hosts = connection.read_response()
            except self._no_script:
                connection.send_command("EVAL", ACQUIRE_LUA, len(identities) + 1,
                                        *(self._prefix + name for name in identities), self._prefix + "hosts",
                                        *self._args, wanted, unused, stamp, *self._host)
                granted, stamp, hosts = connection.read_response()
            self.hosts = max(self.hosts, int(hosts))
            return int(granted), bytes(stamp) if isinstance(stamp, bytes) else str(stamp).encode()
        except self._errors as exc:
            connection.disconnect()
            self._failed_at = time.monotonic()
            raise StoreUnavailable(f"rate-limit storage unreachable ({type(exc).__name__})") from None

    def _sweep(self, leases: dict, now: float) -> None:
        """Forget clients idle for a while, so many addresses do not grow a worker's memory."""
        for key in [key for key, lease in leases.items() if now - lease.period_start > 10 * self.lease + 60]:
            del leases[key]

    def ready(self) -> str | None:
        return unreachable(self.client, "rate-limit storage")


_pid: list[int] = []


def this_process() -> int:
    """``os.getpid()`` without its system call on every request: read once, and again in each forked child."""
    if not _pid:
        _pid.append(os.getpid())
        os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))
    return _pid[0]


def fail_fast_client(url: str, timeout: float):
    """A redis-py client with short timeouts and no retries: a Redis that is down or slow becomes an error
    within a fraction of a second, which each store turns into ``StoreUnavailable``."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))


def unreachable(client, what: str) -> str | None:
    """A readiness check: None when Redis answers PING, else why ``what`` is not usable."""
    import redis

    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"{what} unreachable ({type(exc).__name__})"
    return None


def open_store(url: str, rate: Rate, host_id: str | None = None) -> MemoryLog | RedisLog:
    """``memory://`` or ``redis://host:port`` (settings has already refused anything else)."""
    if url.startswith("memory://"):
        return MemoryLog(rate)
    return RedisLog(rate, url, host_id=host_id)
