"""The probing monitor's state shared by the workers of one host, in memory they all map.

``serve`` creates it before forking its workers, so every worker of the host (and one that replaces a dead
worker) reads and writes the same table under one lock: each answered query is ordered into the client's
history before the answer leaves, as one process would order it, and a flag set by any worker refuses the
client's next answer on every worker, with no Redis round trip. Hosts share through Redis: alerts (and
the flags they set) go to the deployment's stream as they are raised, and once the limiter's calls show a
second host serving the deployment, each answer is ordered through Redis instead (``monitor_store``).

It answers the same calls as ``monitor_store.SharedMonitorStore``, so one set of rules runs over either.
The table has a fixed number of client slots: a client idle for a day is forgotten, and when the slots
one identity may use are all taken the least recently seen of them is given up (bounded memory whatever
number of keys and addresses arrive).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence

import numpy as np

from fraudpipe.serving.monitor_store import IDLE_TTL_MS, Observed, SharedMonitorStore
from fraudpipe.serving.ratelimit_store import StoreUnavailable

SLOTS = 8192
PROBES = 8  # the slots one identity may land in (open addressing)
ROWS = 200  # history and distances kept per identity: the longest window a rule reads
# Per slot, as int64: the identity's digest (two halves), last seen (µs, monotonic clock), answered count,
# the two flags, history rows and distances ever written (each ring is indexed modulo ``ROWS``).
D0, D1, SEEN, COUNT, PROBING, DISTRIBUTION, WRITTEN, DISTANCES = range(8)
FLAGS = {"probing": PROBING, "distribution": DISTRIBUTION}


class HostMonitorStore:
    """One table per host in an anonymous shared mapping (inherited over ``fork``), one lock for all of it."""

    def __init__(self, width: int, alerts: SharedMonitorStore, slots: int = SLOTS) -> None:
        self.width, self.slots, self.alerts = width, slots, alerts
        self.host_id = uuid.uuid4().hex  # how the limiter's calls tell this host from others
        self._salt = os.urandom(16)  # where an identity lands is not predictable: none can be made to push out another
        sizes = (slots * 8 * 8, slots * ROWS * width * 8, slots * ROWS * 8)
        self._map = mmap.mmap(-1, sum(sizes), flags=mmap.MAP_SHARED)
        self.meta = np.frombuffer(self._map, np.int64, slots * 8, 0).reshape(slots, 8)
        self.rows = np.frombuffer(self._map, np.float64, slots * ROWS * width, sizes[0]).reshape(slots, ROWS, width)
        self.distances = np.frombuffer(self._map, np.float64, slots * ROWS, sizes[0] + sizes[1]).reshape(slots, ROWS)
        self._lock = _HostLock()
        self._idle = IDLE_TTL_MS * 1000
        self._known: dict[str, tuple[int, int, int]] = {}  # this worker's last slot per identity (checked on use)

    def _slot(self, name: str, now: int) -> tuple[int, list[int]]:
        """The identity's slot and its fields, claiming a free (or idle, or least recently seen) slot for a
        new identity. Called under the lock; the slot this worker last found is checked first."""
        meta = self.meta
        known = self._known.get(name)
        if known is not None:
            slot, d0, d1 = known
            fields = meta[slot].tolist()
            if fields[D0] == d0 and fields[D1] == d1 and now - fields[SEEN] <= self._idle:
                meta[slot, SEEN] = fields[SEEN] = now
                return slot, fields
        digest = hashlib.blake2b(name.encode(), digest_size=16, key=self._salt).digest()
        d0, d1 = int.from_bytes(digest[:8], "little", signed=True), int.from_bytes(digest[8:], "little", signed=True)
        if len(self._known) >= self.slots:
            self._known.clear()
        self._known[name] = (slot, d0, d1) = self._find(d0, d1, now)
        return slot, meta[slot].tolist()

    def _find(self, d0: int, d1: int, now: int) -> tuple[int, int, int]:
        meta = self.meta
        candidates = [(d0 + i) % self.slots for i in range(PROBES)]
        for slot in candidates:
            fields = meta[slot].tolist()
            if fields[D0] == d0 and fields[D1] == d1:
                if now - fields[SEEN] <= self._idle:
                    meta[slot, SEEN] = now
                    return slot, d0, d1
                break
        else:
            slot = min(candidates, key=lambda s: meta[s, SEEN])  # never-used slots were seen at 0
        meta[slot] = [d0, d1, now, 0, 0, 0, 0, 0]
        return slot, d0, d1

    def observe(self, identities: Sequence[str], query: np.ndarray, block: bool, history_rows: int,
                prada_window: int, prada_min: int, prada_every: int) -> list[Observed] | set[str]:
        """``SharedMonitorStore.observe`` over the host's table: append ``query`` to each identity's history
        and read its flags; with ``block``, a flagged client gets its flags back and nothing is appended."""
        now, values = time.monotonic_ns() // 1000, query.tolist()
        with self._lock:
            found = [self._slot(name, now) for name in identities]
            if block and any(fields[PROBING] or fields[DISTRIBUTION] for _, fields in found):
                return {"flagged"}
            seen = []
            for index, (slot, fields) in enumerate(found):
                count, written = fields[COUNT] + 1, fields[WRITTEN]
                probing, distribution = fields[PROBING], fields[DISTRIBUTION] or index > 0
                want = prada_window if not distribution else 0 if probing else history_rows
                ring, previous = self.rows[slot], (written - 1) % ROWS
                repeat = bool(written) and ring[previous].tolist() == values
                if want and repeat:
                    earlier = ring[previous:previous + 1].copy()  # a repeat completes no run and is at distance 0
                else:
                    earlier = _last(ring, written, want)
                due = not distribution and count - 1 >= prada_min and (count - 1 - prada_min) % prada_every == 0
                kept = _last(self.distances[slot], fields[DISTANCES], prada_window - 1).tolist() if due else None
                ring[written % ROWS] = query
                meta = self.meta[slot]
                meta[COUNT], meta[WRITTEN] = count, written + 1
                flags = {name for name, at in FLAGS.items() if fields[at]} if probing or fields[DISTRIBUTION] else set()
                seen.append(Observed(count, flags, earlier, kept or None, repeat))
            return seen

    def push_distance(self, identity: str, distance: float) -> None:
        with self._lock:
            slot, fields = self._slot(identity, time.monotonic_ns() // 1000)
            self.distances[slot, fields[DISTANCES] % ROWS] = distance
            self.meta[slot, DISTANCES] = fields[DISTANCES] + 1

    def raise_alert(self, identity: str, alert: dict) -> bool:
        """True when this call set the flag; the alert then goes to the deployment's stream (and its flag to
        Redis, for hosts that join later). If Redis cannot take it the flag is taken back, so the alert is
        raised again on the client's next answer (which meanwhile gets 503), never lost."""
        at = FLAGS[alert["detector"]]
        with self._lock:
            slot, fields = self._slot(identity, time.monotonic_ns() // 1000)
            if fields[at]:
                return False
            self.meta[slot, at] = 1
        try:
            return self.alerts.raise_alert(identity, alert)
        except StoreUnavailable:
            with self._lock:
                self.meta[self._slot(identity, time.monotonic_ns() // 1000)[0], at] = 0
            raise

    def ready(self) -> str | None:
        return self.alerts.ready()


class _HostLock:
    """A POSIX record lock on an unlinked file every worker inherits, plus a thread lock within the worker.
    The kernel drops a record lock when its process dies, so a worker killed mid-update never leaves
    the others waiting (a semaphore would stay taken); waiting longer than ``timeout`` is an outage (503)."""

    timeout = 1.0

    def __init__(self) -> None:
        self._fd, path = tempfile.mkstemp(prefix="fraudpipe-monitor-", suffix=".lock")
        os.unlink(path)  # only the descriptor is needed; nothing is left behind
        self._threads = threading.Lock()

    def __enter__(self) -> None:
        if not self._threads.acquire(timeout=self.timeout):
            raise StoreUnavailable("monitor state busy (lock not taken in time)")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError:
                if time.monotonic() > deadline:
                    self._threads.release()
                    raise StoreUnavailable("monitor state busy (lock not taken in time)") from None
                time.sleep(0.0001)

    def __exit__(self, *exc) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_UN)
        self._threads.release()


def _last(ring: np.ndarray, written: int, want: int) -> np.ndarray:
    """The newest ``want`` entries of a ring written ``written`` times, oldest first (a copy)."""
    n = min(written, want, len(ring))
    if n <= 0:
        return ring[:0].copy()
    end = written % len(ring)
    if end >= n:
        return ring[end - n:end].copy()
    return np.concatenate([ring[len(ring) - (n - end):], ring[:end]])
