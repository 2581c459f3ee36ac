"""The probing monitor's state in Redis, shared by every host that shares the rate limit.

Exact detection needs each answered query in one ordered history before the next answer leaves. The
workers of one host get that from the table they all map (``monitor_host``), with no round trip; hosts
get it here, at one round trip per answered ``/predict`` (made while the answer is held, in the script
call below): the history is appended to, and the client's flags read, atomically. A flag set anywhere
therefore refuses the client's very next answer everywhere; a worker that has seen a flag also refuses
that client before running the model. The same store carries every host's alerts. Apps built outside
``serve`` (no host table) always order their answers here.

The PRADA distance of each query to the client's earlier ones is computed by the worker that answered it
and appended without waiting for the reply (pipelined on the same connection and read on its next use):
the push is written before that answer leaves, so a later query of the client, wherever it is answered,
finds it. Alerts are written once (``HSETNX`` on the flag) to one Redis stream, ``monitor --follow
--stream`` reads it. Any Redis error is ``StoreUnavailable``: the answer becomes a 503, never unwatched.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Sequence

import numpy as np

from fraudpipe.serving.ratelimit_store import StoreUnavailable, fail_fast_client, unreachable

PREFIX = "fraudpipe:mon:"
ALERTS = "fraudpipe:mon:alerts"
ALERTS_KEPT = 100_000
IDLE_TTL_MS = 24 * 3600 * 1000  # a client's history and flags are forgotten about a day after it goes quiet
# (the expiry is renewed every 64th answer, not on each: two commands fewer per answer)

# KEYS: per identity its history (a string of packed rows, newest last), flag hash and distances (a string
# of packed float64, newest last); the primary identity first. ARGV: block (1/0), the packed query, history
# rows wanted for probing, the PRADA window, PRADA minimum, PRADA every, ttl (ms). Returns {1} when blocking
# a flagged client (nothing appended), else {0, {count, probing flagged, distribution flagged, earlier rows,
# earlier distances} per identity}. Strings, not lists: one bulk reply per identity, one SET to append.
OBSERVE_LUA = """
local query = ARGV[2]
local width = #query
local rows, window, pmin, every, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6]), tonumber(ARGV[7])
local flags, any = {}, false
for i = 1, #KEYS, 3 do
  local found = redis.call('HMGET', KEYS[i + 1], 'probing', 'distribution')
  flags[#flags + 1] = found
  if found[1] or found[2] then any = true end
end
if ARGV[1] == '1' and any then return {1} end
local function trimmed(key, length, keep)
  if length > 2 * keep then
    redis.call('SET', key, redis.call('GETRANGE', key, -keep, -1), 'KEEPTTL')
  end
end
local out = {}
for i = 1, #KEYS, 3 do
  local h, f, d = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  local probing, distribution = flags[(i + 2) / 3][1], flags[(i + 2) / 3][2] or i > 1
  local count = redis.call('HINCRBY', f, 'count', 1)
  local want = 0
  if not probing then want = rows end
  if not distribution then want = window end
  local earlier, distances = '', ''
  if want > 0 then earlier = redis.call('GETRANGE', h, -want * width, -1) end
  if not distribution and count - 1 >= pmin and (count - 1 - pmin) % every == 0 then
    distances = redis.call('GETRANGE', d, -(window - 1) * 8, -1)
    trimmed(d, redis.call('STRLEN', d), window * 8)
  end
  local keep = rows
  if i == 1 then keep = math.max(rows, window) end
  trimmed(h, redis.call('APPEND', h, query), keep * width)
  if count % 64 == 1 then
    redis.call('PEXPIRE', h, ttl)
    redis.call('PEXPIRE', f, ttl)
  end
  out[#out + 1] = {count, probing and 1 or 0, distribution and 1 or 0, earlier, distances}
end
return {0, out}
"""

# KEYS: the identity's flag hash, the alert stream. ARGV: detector, alert JSON, ttl, stream length.
ALERT_LUA = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'alert', ARGV[2])
return 1
"""

# The state a host's table keeps for one identity, in the keys above (``monitor_host``): read when the table
# does not hold the identity (new to the host, pushed out, or a restarted host), written when the table
# pushes it out. KEYS: per identity its history, flag hash, distances. ARGV: rows, distances wanted, row bytes.
LOAD_LUA = """
local rows, kept, width, out = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), {}
for i = 1, #KEYS, 3 do
  local f = redis.call('HMGET', KEYS[i + 1], 'count', 'probing', 'distribution')
  out[#out + 1] = {tonumber(f[1]) or 0, f[2] and 1 or 0, f[3] and 1 or 0,
                   redis.call('GETRANGE', KEYS[i], -rows * width, -1), redis.call('GETRANGE', KEYS[i + 2], -kept * 8, -1)}
end
return out
"""
# KEYS: as LOAD_LUA. ARGV: ttl, then per identity its count, history (packed rows, oldest first), distances
# and its raised flags ('probing', 'distribution' or nothing, comma-separated): a flag the table holds is
# kept even where Redis lost it (a restart without persistence), so no flagged client is answered again.
SPILL_LUA = """
for k = 0, #KEYS / 3 - 1 do
  local f = KEYS[3 * k + 2]
  redis.call('SET', KEYS[3 * k + 1], ARGV[4 * k + 3], 'PX', ARGV[1])
  redis.call('HSET', f, 'count', ARGV[4 * k + 2])
  for detector in string.gmatch(ARGV[4 * k + 5], '[a-z]+') do
    redis.call('HSETNX', f, detector, '{"type":"flag","kept_by":"host table"}')
  end
  redis.call('PEXPIRE', f, ARGV[1])
  redis.call('SET', KEYS[3 * k + 3], ARGV[4 * k + 4], 'PX', ARGV[1])
end
return 1
"""


# ``Observed.flags`` by (probing, distribution): four fixed sets, none built per answer.
FLAG_SETS = {(False, False): frozenset(), (True, False): frozenset({"probing"}),
             (False, True): frozenset({"distribution"}), (True, True): frozenset({"probing", "distribution"})}


class Observed:
    """One identity's shared view at this query: its count, its flags, and earlier queries (oldest first);
    ``repeat`` when the store already saw the query repeat the one before it (no run can complete);
    ``distance`` when the store has already computed and kept this query's PRADA distance; ``verdict`` when
    it has already evaluated the probing rules (``monitor_kernels.probing_rule``'s rule, a, b)."""

    __slots__ = ("count", "flags", "history", "distances", "repeat", "distance", "verdict")

    def __init__(self, count: int, flags: frozenset[str], history: np.ndarray, distances: np.ndarray | None,
                 repeat: bool = False, distance: float | None = None,
                 verdict: tuple[int, int, int] | None = None) -> None:
        self.count, self.flags, self.history, self.distances = count, flags, history, distances
        self.repeat, self.distance, self.verdict = repeat, distance, verdict


class SharedMonitorStore:
    """One connection per process (and thread), opened after the fork, EVALSHA on it directly."""

    pause = 1.0

    def __init__(self, url: str, timeout: float = 0.5) -> None:
        import redis
        from redis.exceptions import NoScriptError

        self._no_script = NoScriptError
        self._errors = (redis.RedisError, OSError, ValueError, TypeError, IndexError)
        self.client = fail_fast_client(url, timeout)
        self._observe = self.client.register_script(OBSERVE_LUA)
        self._alert = self.client.register_script(ALERT_LUA)
        self._load = self.client.register_script(LOAD_LUA)
        self._spill = self.client.register_script(SPILL_LUA)
        self._local = threading.local()
        self._failed_at = -math.inf

    def _connection(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            pool = self.client.connection_pool
            local.connection, local.pending, local.pid = pool.connection_class(**pool.connection_kwargs), 0, os.getpid()
        return local

    def _call(self, script, keys: Sequence[str], args: Sequence) -> object:
        if time.monotonic() - self._failed_at < self.pause:
            raise StoreUnavailable("monitor state unreachable (failed moments ago)")
        local = self._connection()
        connection = local.connection
        try:
            while local.pending:  # replies of pushes sent without waiting: an error among them raises here
                local.pending -= 1
                connection.read_response()
            connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
            try:
                return connection.read_response()
            except self._no_script:
                connection.send_command("EVAL", script.script, len(keys), *keys, *args)
                return connection.read_response()
        except self._errors as exc:
            raise self._outage(local, exc) from None

    def _outage(self, local, exc: Exception) -> StoreUnavailable:
        """Drop the connection and what was pipelined on it; refuse without trying for ``pause`` seconds."""
        local.connection.disconnect()
        local.pending = 0
        self._failed_at = time.monotonic()
        return StoreUnavailable(f"monitor state unreachable ({type(exc).__name__})")

    def observe(self, identities: Sequence[str], query: np.ndarray, block: bool, history_rows: int,
                prada_window: int, prada_min: int, prada_every: int, rules: tuple | None = None) -> list[Observed] | set[str]:
        """Append ``query`` to each identity's history and read its flags; with ``block``, a flagged client
        gets its flags back (a set) and nothing is appended. ``rules`` is for the host's table: here the
        caller evaluates them over the views."""
        keys = [f"{PREFIX}{name}:{part}" for name in identities for part in ("h", "f", "d")]
        packed = np.asarray(query, np.float64).tobytes()
        reply = self._call(self._observe, keys, (int(block), packed, history_rows, prada_window, prada_min,
                                                 prada_every, IDLE_TTL_MS))
        if int(reply[0]) == 1:
            return {"flagged"}
        seen = []
        with _unreadable():
            for count, probing, distribution, earlier, distances in reply[1]:
                flags = FLAG_SETS[bool(int(probing)), bool(int(distribution))]
                seen.append(Observed(int(count), flags, np.frombuffer(earlier, np.float64).reshape(-1, len(query)),
                                     np.frombuffer(distances, np.float64) if distances else None))
        return seen

    def push_distance(self, identity: str, distance: float) -> None:
        """Appended without waiting: the reply is read (and an error raised) on this connection's next call."""
        local = self._connection()
        key = f"{PREFIX}{identity}:d"
        try:
            local.connection.send_packed_command(local.connection.pack_commands(
                [("APPEND", key, np.float64(distance).tobytes()), ("PEXPIRE", key, IDLE_TTL_MS)]), check_health=False)
            local.pending += 2  # the distance list is trimmed by the observe script when it is read
        except self._errors as exc:
            raise self._outage(local, exc) from None

    def load(self, identities: Sequence[str], rows: int, kept: int, width: int) -> dict[str, tuple]:
        """What Redis holds for each identity: (count, probing, distribution, rows oldest first, distances)."""
        keys = [f"{PREFIX}{name}:{part}" for name in identities for part in ("h", "f", "d")]
        reply = self._call(self._load, keys, (rows, kept, width * 8))
        with _unreadable():
            return {name: (int(count), bool(int(probing)), bool(int(distribution)),
                           np.frombuffer(history, np.float64).reshape(-1, width), np.frombuffer(distances, np.float64))
                    for name, (count, probing, distribution, history, distances) in zip(identities, reply)}

    def spill(self, states: Sequence[tuple[str, int, np.ndarray, np.ndarray, frozenset[str]]]) -> None:
        """Keep (identity, count, rows, distances, raised flags) here for the day a table no longer holds them."""
        keys = [f"{PREFIX}{name}:{part}" for name, *_ in states for part in ("h", "f", "d")]
        args = [IDLE_TTL_MS, *(value for _, count, rows, distances, flags in states
                               for value in (count, np.ascontiguousarray(rows, np.float64).tobytes(),
                                             np.ascontiguousarray(distances, np.float64).tobytes(),
                                             ",".join(sorted(flags))))]
        self._call(self._spill, keys, args)

    def raise_alert(self, identity: str, alert: dict) -> bool:
        """True when this call set the flag (the alert is new); False when another worker set it first."""
        reply = self._call(self._alert, [f"{PREFIX}{identity}:f", ALERTS],
                           (alert["detector"], json.dumps(alert, separators=(",", ":")), IDLE_TTL_MS, ALERTS_KEPT))
        return int(reply) == 1

    def ready(self) -> str | None:
        return unreachable(self.client, "monitor state")


@contextlib.contextmanager
def _unreadable():
    """A client's state that is not what this module writes (a history whose length is no whole number of
    rows) is an outage for that client (503), never a crash (500) and never an empty history."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise StoreUnavailable(f"monitor state unreadable ({type(exc).__name__})") from None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_alerts(url: str, follow: bool):
    """Every alert in the shared stream, in order, each once; with ``follow``, then each new one as it lands."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    last = "0"
    while True:
        batch = client.xread({ALERTS: last}, block=1000 if follow else None, count=500) or []
        if not batch and not follow:
            return
        for _, entries in batch:
            for entry_id, fields in entries:
                last = entry_id
                yield json.loads(fields[b"alert"])
