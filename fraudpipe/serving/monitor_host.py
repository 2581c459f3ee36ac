"""The probing monitor's state shared by the workers of one host, in memory they all map.

``serve`` creates it before forking its workers, so every worker of the host (and one that replaces a dead
worker) reads and writes the same table under one lock: each answered query is ordered into the client's
history before the answer leaves, as one process would order it, and a flag set by any worker refuses the
client's next answer on every worker, with no Redis round trip. Hosts share through Redis: alerts (and
the flags they set) go to the deployment's stream as they are raised, and once the limiter's calls show a
second host serving the deployment, each answer is ordered through Redis instead (``monitor_store``).

It answers the same calls as ``monitor_store.SharedMonitorStore``, so one set of rules runs over either
(``push_distance`` apart: the table keeps each query's PRADA distance as it orders the query).
The table has a fixed number of client slots (bounded memory whatever number of keys and addresses
arrive): a client idle for a day is forgotten, and when the slots one identity may use are all taken the
least recently seen of them is written to Redis and given up, to be read back when that client returns.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import mmap
import os
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fraudpipe.data import UNITS
from fraudpipe.serving import monitor_kernels as kernels
from fraudpipe.serving.monitor_kernels import COUNT, D0, D1, DISTANCES, DISTRIBUTION, PROBING, SEEN, WRITTEN
from fraudpipe.serving.monitor_store import FLAG_SETS, IDLE_TTL_MS, Observed, SharedMonitorStore
from fraudpipe.serving.ratelimit_store import StoreUnavailable, this_process

SLOTS = 8192
PROBES = 8  # the slots one identity may land in (open addressing)
ROWS = 200  # history and distances kept per identity: the longest window a rule reads
NAME_BYTES = 128  # an identity's name, kept so a pushed-out identity can be written to Redis under it
FLAGS = {"probing": PROBING, "distribution": DISTRIBUTION}


class HostMonitorStore:
    """One table per host in an anonymous shared mapping (inherited over ``fork``), one lock for all of it.

    The table is a cache of what Redis would hold: an identity the table does not hold (new to this
    host, pushed out, or the host restarted) is read from Redis before its query is ordered (its flags,
    count, history and distances; one round trip, outside the lock), and one pushed out while it was
    still within its idle day is written there first. A caller cannot make the table forget its own
    history, nor a restart (``serve`` writes the table out when it stops) forget a history or a flag."""

    def __init__(self, width: int, alerts: SharedMonitorStore, slots: int = SLOTS) -> None:
        self.width, self.slots, self.alerts = width, slots, alerts
        self.host_id = uuid.uuid4().hex  # how the limiter's calls tell this host from others
        self._salt = os.urandom(16)  # where an identity lands is not predictable: none can be made to push out another
        sizes = (slots * 8 * 8, slots * ROWS * width * 8, slots * ROWS * 8, slots * NAME_BYTES, 8, 8)
        self._map = mmap.mmap(-1, sum(sizes), flags=mmap.MAP_SHARED)
        offsets = np.cumsum((0, *sizes))
        self._hosts_seen = memoryview(self._map)[offsets[4]:offsets[4] + 8].cast("q")  # the most any worker saw
        self.meta = np.frombuffer(self._map, np.int64, slots * 8, offsets[0]).reshape(slots, 8)
        self.rows = np.frombuffer(self._map, np.float64, slots * ROWS * width, offsets[1]).reshape(slots, ROWS, width)
        self.distances = np.frombuffer(self._map, np.float64, slots * ROWS, offsets[2]).reshape(slots, ROWS)
        self.names = np.frombuffer(self._map, f"S{NAME_BYTES}", slots, offsets[3])
        self._lock = _HostLock(np.frombuffer(self._map, np.int64, 1, offsets[5]))
        self._observers: dict[tuple, object] = {}  # ``observe``'s, by its settings
        self._idle = IDLE_TTL_MS * 1000
        self._digest = functools.lru_cache(maxsize=slots)(self._name_digest)  # every answer asks: made once per name
        self._digests_of = functools.lru_cache(maxsize=slots)(self._digest_row)
        kernels.warm()  # before any lock is held (compiling takes seconds), and in serve before the fork

    def alone(self, hosts_seen: int) -> bool:
        """Whether this host's answers may be ordered in its table: never again once any of its workers (a
        restarted or reloaded one included) has seen a second host serve, since from then on flags and
        histories are kept in Redis, where this table would not see them."""
        seen = self._hosts_seen  # a memoryview: read on every answer, at a third of a numpy element's cost
        if hosts_seen > seen[0]:
            seen[0] = hosts_seen
        return seen[0] <= 1

    def write_out(self, batch: int = 256) -> int:
        """Every identity the table holds, written to Redis (``serve`` calls it once its workers have
        stopped), flags included: a host started again reads them back, so a restart forgets no client's
        history or flag, even where Redis lost its own copy (restarted without persistence). Not once a
        second host was seen: Redis then holds newer histories than the table, which must not replace them."""
        if not self.alone(1):
            return 0
        now = time.monotonic_ns() // 1000
        live = [slot for slot, fields in enumerate(self.meta.tolist())
                if fields[SEEN] and now - fields[SEEN] <= self._idle]
        for start in range(0, len(live), batch):
            self.alerts.spill([self._state(slot) for slot in live[start:start + batch]])
        return len(live)

    def _state(self, slot: int) -> tuple[str, int, np.ndarray, np.ndarray, frozenset[str]]:
        """What ``spill`` keeps: a flag only once its alert is raised (a claimed one is raised, to Redis, by
        the worker that claimed it)."""
        fields = self.meta[slot].tolist()
        return (self.names[slot].decode(), fields[COUNT], kernels.last_rows(self.rows[slot], fields[WRITTEN], ROWS),
                kernels.last(self.distances[slot], fields[DISTANCES], ROWS),
                frozenset(name for name, at in FLAGS.items() if fields[at] == kernels.RAISED))

    def _name_digest(self, name: str) -> tuple[int, int]:
        digest = hashlib.blake2b(name.encode(), digest_size=16, key=self._salt).digest()
        return int.from_bytes(digest[:8], "little", signed=True), int.from_bytes(digest[8:], "little", signed=True)

    def _locate(self, name: str, now: int) -> int | None:
        """The identity's slot, or None when the table does not hold it (or held it idle a day). Called under
        the lock."""
        d0, d1 = self._digest(name)
        slot = kernels.locate(self.meta, d0, d1, now, self._idle, PROBES)
        return slot if slot >= 0 else None

    def _claim(self, name: str, now: int, state: tuple, taken: set[int]) -> int:
        """A slot for an identity the table does not hold, filled with what Redis held for it. The least
        recently seen of its candidates is taken; unless it was idle, its identity is written to Redis
        first, under the lock, so no worker can read that identity back before it is there (evictions come
        only with a full table: a flood pays this round trip, not the usual answer)."""
        d0, d1 = self._digest(name)
        meta = self.meta
        candidates = [(d0 + i) % self.slots for i in range(PROBES)]
        slot = next((s for s in candidates if meta[s, D0] == d0 and meta[s, D1] == d1), None)
        if slot is None:  # never-used slots were seen at 0; a slot this request holds is never given up
            slot = min((s for s in candidates if s not in taken), key=lambda s: meta[s, SEEN])
        old = meta[slot].tolist()
        if old[SEEN] and now - old[SEEN] <= self._idle and (old[D0], old[D1]) != (d0, d1):
            self.alerts.spill([self._state(slot)])
        count, probing, distribution, rows, distances = state
        rows, distances = rows[-ROWS:], distances[-ROWS:]
        self.rows[slot, :len(rows)] = rows
        self.distances[slot, :len(distances)] = distances
        fields = [d0, d1, now, count, int(probing), int(distribution), len(rows), len(distances)]
        meta[slot] = fields
        self.names[slot] = name.encode()[:NAME_BYTES]
        return slot

    def _digest_row(self, identities: tuple[str, ...]) -> np.ndarray:
        return np.array([self._digest(name) for name in identities], np.int64)

    def observe(self, identities: Sequence[str], query: np.ndarray, block: bool, history_rows: int,
                prada_window: int, prada_min: int, prada_every: int,
                rules: tuple[int, np.ndarray, int, int, float] | None = None) -> list[Observed] | set[str]:
        """``SharedMonitorStore.observe`` over the host's table: append ``query`` to each identity's history
        and read its flags; with ``block``, a flagged client gets its flags back and nothing is appended.
        One compiled call takes the table's lock (an atomic word in the shared map, no system call), finds
        the identities, appends the query with its PRADA distance and, given ``rules`` (``QueryMonitor.rules``),
        evaluates the probing rules and a due PRADA test: an answer on which no rule can raise
        anything (the usual one) returns no views at all. Identities the table lacks are read from Redis
        with the lock released, then claimed under it."""
        key = (block, history_rows, prada_window, prada_min, prada_every,
               None if rules is None else (*rules[:1], *rules[2:], np.asarray(rules[1], np.float64).tobytes()))
        bound = self._observers.get(key)
        if bound is None:
            bound = self._observers[key] = self.observer(block, history_rows, prada_window, prada_min, prada_every,
                                                         rules)
        return bound(identities, query)

    def observer(self, block: bool, history_rows: int, prada_window: int, prada_min: int, prada_every: int,
                 rules: tuple[int, np.ndarray, int, int, float] | None = None):
        """``observe`` with its settings bound once: the monitor's gate calls it on every answer, and the
        usual answer costs the compiled call and little else."""
        settings, floats, table = self._settings_of(block, history_rows, prada_window, prada_min, prada_every, rules)
        meta, rows, distances, ordered, digests_of = self.meta, self.rows, self.distances, self._lock.ordered, self._digests_of
        buffers, width, quiet = threading.local(), self.width, kernels.QUIET

        def observe(identities: Sequence[str], query: np.ndarray) -> list[Observed] | set[str]:
            out = getattr(buffers, "out", None)  # this thread's: read before its next call
            if out is None or len(out[0]) < len(identities):
                k = max(2, len(identities))
                out = buffers.out = (np.zeros((k, 10), np.int64), np.zeros(k), np.zeros((k, history_rows, width)),
                                     np.zeros(prada_window))
            now, digests = time.monotonic_ns() // 1000, digests_of(tuple(identities))
            status, n_kept = ordered(meta, rows, distances, digests, query, floats, settings, now, out, table)
            if status == quiet:
                return []
            return self._settled(identities, query, digests, floats, settings, now, out, table, status, n_kept)

        return observe

    def _settled(self, identities: Sequence[str], query: np.ndarray, digests: np.ndarray, floats: np.ndarray,
                 settings: np.ndarray, now: int, out: tuple, table: np.ndarray, status: int,
                 n_kept: int) -> list[Observed] | set[str]:
        """Everything but the usual answer: identities the table lacks, a lock another worker held, a flagged
        client, and the views the rules raise alerts from."""
        fields, found, earlier, kept = out
        loaded: dict[str, tuple] = {}
        for _ in range(4):
            if status == kernels.LACKING:
                lacking = [name for name, slot in zip(identities, fields[:, kernels.F_SLOT].tolist()) if slot < 0]
                loaded.update(self.alerts.load(lacking, ROWS, ROWS, self.width))
            elif status != kernels.BUSY:
                break
            with self._lock:  # only the table's reads and writes while the other workers wait
                for name, state in loaded.items():
                    if self._locate(name, now) is None:
                        held = {self._locate(other, now) for other in identities} - {None}
                        self._claim(name, now, state, held)
                status, n_kept = kernels.order(self.meta, self.rows, self.distances, self._lock.word, 0, digests,
                                               query, floats, settings, now, *out, table)
        else:
            raise StoreUnavailable("monitor state busy (identities pushed out while being read)")
        if status == kernels.QUIET:
            return []
        if status == kernels.FLAGGED:
            return {"flagged"}
        return [Observed(count, FLAG_SETS[bool(probing), bool(distributed)], earlier[i, :n].copy(),
                         kept[:n_kept].copy() if due and n_kept else None, bool(repeat),
                         distance if distance >= 0 else None,
                         None if rule == kernels.UNKNOWN else (rule, a, b))
                for i, ((count, probing, distributed, due, repeat, n, _, rule, a, b), distance)
                in enumerate(zip(fields[:len(identities)].tolist(), found.tolist()))]

    def _settings_of(self, block: bool, history_rows: int, prada_window: int, prada_min: int, prada_every: int,
                     rules: tuple | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``order``'s settings, floats and coefficient table for these arguments."""
        probe_run, noise, aligned_run, monotonic_run, prada_w = rules or (0, np.zeros(self.width), 0, 0, 0.0)
        settings = np.array([history_rows, prada_window, prada_min, prada_every, block, self._idle, PROBES, probe_run,
                             aligned_run, monotonic_run], np.int64)
        floats = np.array([*UNITS, *noise, prada_w], np.float64)
        return settings, floats, kernels.coefficient_table(prada_window)

    def raise_alert(self, identity: str, alert: dict) -> bool:
        """True when this call set the flag; the alert then goes to the deployment's stream (and its flag to
        Redis, where a table that no longer holds the identity, or a restarted host, reads it). If Redis
        cannot take it the flag is taken back, so the alert is raised again on the client's next answer
        (which meanwhile gets 503), never lost."""
        at, now = FLAGS[alert["detector"]], time.monotonic_ns() // 1000
        with self._lock:
            held = self._locate(identity, now)
            if held is not None:
                if self.meta[held, at] == kernels.RAISED:
                    return False
                self.meta[held, at] = kernels.RAISED  # from unset, or from claimed by the query that raises it
        try:
            return self.alerts.raise_alert(identity, alert)
        except StoreUnavailable:
            with self._lock:
                held = self._locate(identity, now)
                if held is not None:
                    self.meta[held, at] = 0
            raise

    def ready(self) -> str | None:
        return self.alerts.ready()


class _HostLock:
    """An atomic word in the table's shared map (0, or the token of whoever holds it: its process id and a
    thread number), plus a thread lock within the worker for the holds taken from Python. The usual hold is
    taken and given inside ``order``'s one compiled call; when that finds the word taken it gives up after a
    few microseconds (holding the GIL, it must not wait for a thread of its own process) and the caller waits
    here. A waiter that finds the word held past ``spin`` by a process that no longer runs (a worker killed
    mid-update) takes it over, so a dead worker never leaves the others waiting; waiting longer than
    ``timeout`` for a live one is an outage (503). (Were a dead holder's process id taken by a new process
    before any worker next asked for the lock, the word would wait out that timeout on every answer until a
    restart: pids are handed out in turn, so not within the microseconds a busy table leaves.)"""

    timeout = 1.0
    spin = 0.0002
    THREAD_BITS = 20

    def __init__(self, word: np.ndarray) -> None:
        self.word = word
        self._threads = threading.Lock()
        self._local = threading.local()
        self._threads_seen = itertools.count()

    def token(self) -> int:
        """This thread's token, made again in a forked child (whose process id differs)."""
        local, pid = self._local, this_process()
        if getattr(local, "pid", None) != pid:
            number = next(self._threads_seen) % ((1 << self.THREAD_BITS) - 1) + 1
            local.pid, local.token = pid, (pid << self.THREAD_BITS) | number
        return local.token

    def ordered(self, meta, rows, distances, digests, query, floats, settings, now, out, table) -> tuple[int, int]:
        """``order`` taking the lock itself; the word is given back if the call fails holding it."""
        token = self.token()
        try:
            return kernels.order(meta, rows, distances, self.word, token, digests, query, floats, settings, now, *out,
                                 table)
        except BaseException:
            kernels.give(self.word, token)
            raise

    def __enter__(self) -> None:
        if not self._threads.acquire(timeout=self.timeout):
            raise StoreUnavailable("monitor state busy (lock not taken in time)")
        token, started = self.token(), time.monotonic()
        while not kernels.take(self.word, token, 16):
            waited = time.monotonic() - started
            if waited > self.timeout:
                self._threads.release()
                raise StoreUnavailable("monitor state busy (lock not taken in time)")
            if waited > self.spin:
                holder = int(self.word[0])
                if holder and not _running(holder >> self.THREAD_BITS) and kernels.give(self.word, holder) == holder:
                    continue  # its process died holding it: the word is free again
                time.sleep(0.0001)

    def __exit__(self, *exc) -> None:
        kernels.give(self.word, self.token())
        self._threads.release()


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not: it died, and nobody has reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
