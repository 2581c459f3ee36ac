"""The monitor's per-answer arithmetic, compiled (numba): every answered ``/predict`` runs it, and as numpy
calls on arrays of 4 to 800 numbers it cost more in call overhead than in arithmetic, most of it while the
host table's lock was held and the other worker waited (README, Benchmarks).

Each function is the plain loop its docstring names; ``tests/test_monitor.py`` checks them against the
numpy they replace. Indices into the table are taken modulo the ring's length, never from a caller.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_OPTIONS = {"boundscheck": True}  # the GIL is kept: a kernel takes microseconds, and a thread that let it go
# could wait a whole switch interval to take it back


def _compiled(function):
    """Compiled once per machine: numba keeps the machine code beside this file (or in the user's cache
    folder) and later processes load it in a fraction of the seconds compiling takes. Where neither can be
    written, each process compiles at first use."""
    try:
        return njit(cache=True, **_OPTIONS)(function)
    except RuntimeError:  # numba: "no locator available" (no writable cache folder)
        return njit(**_OPTIONS)(function)

# Per slot of the host table (``monitor_host``), as int64: the identity's digest (two halves), last seen (µs,
# monotonic clock), answered count, the two flags, history rows and distances ever written (each ring is
# indexed modulo its length).
D0, D1, SEEN, COUNT, PROBING, DISTRIBUTION, WRITTEN, DISTANCES = range(8)
# A flag's values: its alert raised (``HostMonitorStore.raise_alert``), or claimed by the ``order`` call whose
# query completed the rule, under the table's lock, so the client's next query is refused (with blocking on)
# in whatever worker it arrives while the claiming worker is still raising the alert.
RAISED, CLAIMED = 1, 2
NO_RULE, CONSECUTIVE, ALIGNED, MONOTONIC = range(4)
ORDERED, FLAGGED, LACKING, QUIET, BUSY = range(5)


@_compiled
def locate(meta, d0, d1, now, idle, probes):
    """The slot holding digest (d0, d1) among its ``probes`` candidates, -1 if none, -2 if idle past ``idle``."""
    slots = meta.shape[0]
    for i in range(probes):
        slot = (d0 % slots + i) % slots  # as Python's (d0 + i) % slots, without wrapping past int64
        if meta[slot, D0] == d0 and meta[slot, D1] == d1:
            return slot if now - meta[slot, SEEN] <= idle else -2
    return -1


@_compiled
def nearest(ring, start, stop, units, scaled):
    """PRADA's distance: from ``scaled`` (a query over ``units``) to the nearest of rows ``start`` to
    ``stop`` of ``ring`` (indices taken modulo its length; rows in raw units, or already scaled with units
    of one). Summed in feature order, so every store computes the same bits."""
    size, width = ring.shape[0], ring.shape[1]
    best = math.inf
    for r in range(start, stop):
        total = 0.0
        for j in range(width):
            d = ring[r % size, j] / units[j] - scaled[j]
            total += d * d
        best = min(best, total)
    return math.sqrt(best)


@_compiled
def last(ring, written, want):
    """The newest ``want`` values of a ring (1-d) written ``written`` times, oldest first (a copy)."""
    out = np.empty(max(0, min(written, want, ring.shape[0])))
    copy_last(ring, written, out)
    return out


@_compiled
def last_rows(ring, written, want):
    """The newest ``want`` rows of a ring (2-d) written ``written`` times, oldest first (a copy)."""
    out = np.empty((max(0, min(written, want, ring.shape[0])), ring.shape[1]))
    copy_last(ring, written, out)
    return out


@_compiled
def copy_last(ring, written, out):
    """The newest ``len(out)`` entries of a ring written ``written`` times into ``out``, oldest first."""
    size, n = ring.shape[0], out.shape[0]
    for k in range(n):
        out[k] = ring[(written - n + k) % size]


@intrinsic
def _swap_if(typingctx, word, expected, new):
    """One atomic compare-and-swap on ``word[0]`` (int64): set to ``new`` if it holds ``expected``; returns
    what it held. x86's ``lock cmpxchg``: the table's lock costs no system call."""
    signature = types.int64(word, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, sig.args[0], array, [context.get_constant(types.intp, 0)])
        return builder.extract_value(builder.cmpxchg(pointer, args[1], args[2], "seq_cst", "seq_cst"), 0)

    return signature, codegen


@_compiled
def take(word, token, spins):
    """The table's lock for ``token`` (nonzero), tried ``spins`` times; False if another holder kept it."""
    for _ in range(spins):
        if _swap_if(word, 0, token) == 0:
            return True
    return False


@_compiled
def give(word, token):
    """Lets go of the lock if ``token`` holds it; returns who held it."""
    return _swap_if(word, token, 0)


SPINS = 256  # tries of the lock inside ``order`` before the caller waits for it the slow way (a few µs)
# ``order``'s settings, one int64 array: rows of history copied out, PRADA's window, its first test and
# period, blocking, the idle time (µs), the slots an identity may use, and the three probing rules' runs
# (probe_run 0: the caller evaluates the rules itself).
HISTORY, PRADA_WINDOW, PRADA_MIN, PRADA_EVERY, BLOCK, IDLE, PROBES, PROBE_RUN, ALIGNED_RUN, MONOTONIC_RUN = range(10)
# ``order``'s fields per identity: the first six as ``Observed`` reads them, its slot, the probing verdict.
F_COUNT, F_PROBING, F_DISTRIBUTION, F_DUE, F_REPEAT, F_ROWS, F_SLOT, F_RULE, F_A, F_B = range(10)
UNKNOWN = -1  # the rules were not evaluated here


@_compiled
def order(meta, rows, distances, lock, token, digests, query, floats, settings, now, fields, found, earlier, kept,
          coefficients):
    """One answered query appended to each identity's slot (``HostMonitorStore.observe``; the first
    identity is the primary, the only one PRADA watches). With ``token`` nonzero the table's lock is taken
    here (``BUSY``: not within ``SPINS`` tries, nothing was read); with 0 the caller holds it. Returns
    (status, how many of ``kept`` are the primary's earlier distances); everything else is written into the
    caller's ``fields``, ``found``, ``earlier`` and ``kept``. ``floats``: the features' units, the noise the
    aligned rule allows, PRADA's threshold on W; ``coefficients``: ``coefficient_table``.

    ``LACKING``: an identity (its slot -1 or -2 in ``fields[:, F_SLOT]``) is not held, nothing was written.
    ``FLAGGED``: blocking is on and a slot is flagged, nothing was appended. ``QUIET`` (only when the rules
    are evaluated here): appended, and no rule raises anything on this query (no probing verdict, and no
    PRADA test due or its W at or above the threshold): the caller has nothing to do. ``ORDERED``:
    appended; per identity its count, two flags, whether the PRADA test is due (with the rules evaluated
    here: due and its W below the threshold), whether the query repeats
    the one before it, how many earlier rows ``earlier`` holds for it (oldest first), its slot and the
    probing verdict (rule, a, b; ``UNKNOWN`` with probe_run 0); ``found``, the query's PRADA distance (-1:
    not computed), kept beside it for the next query; ``kept``, the primary's earlier distances when the
    test is due. A probing verdict, or a W below the threshold, claims its flag (``CLAIMED``) before the
    lock is given back: the flags in ``fields`` are those before this query, and the caller raises the alert."""
    if token != 0 and not take(lock, token, SPINS):
        return BUSY, 0
    status, n_kept = _order(meta, rows, distances, digests, query, floats, settings, now, fields, found, earlier,
                            kept, coefficients)
    if token != 0:
        give(lock, token)
    return status, n_kept


@_compiled
def _order(meta, rows, distances, digests, query, floats, settings, now, fields, found, earlier, kept, coefficients):
    k, size, width = digests.shape[0], rows.shape[1], rows.shape[2]
    history_rows, prada_window = settings[HISTORY], settings[PRADA_WINDOW]
    prada_min, prada_every, block = settings[PRADA_MIN], settings[PRADA_EVERY], settings[BLOCK]
    probe_run = settings[PROBE_RUN]
    units, noise, threshold = floats[:width], floats[width:2 * width], floats[2 * width]
    scaled = query / units
    fields[:k] = 0
    found[:k] = -1.0
    lacking = False
    for i in range(k):
        fields[i, F_SLOT] = locate(meta, digests[i, 0], digests[i, 1], now, settings[IDLE], settings[PROBES])
        lacking = lacking or fields[i, F_SLOT] < 0
    if lacking:
        return LACKING, 0
    for i in range(k):
        if block and (meta[fields[i, F_SLOT], PROBING] or meta[fields[i, F_SLOT], DISTRIBUTION]):
            return FLAGGED, 0
    n_kept, quiet = 0, True
    for i in range(k):
        slot = fields[i, F_SLOT]
        count, written = meta[slot, COUNT] + 1, meta[slot, WRITTEN]
        probing, flagged = meta[slot, PROBING], meta[slot, DISTRIBUTION]
        distribution = flagged != 0 or i > 0
        ring = rows[slot]
        previous = (written - 1) % size
        repeat = written > 0
        if repeat:
            for j in range(width):
                if ring[previous, j] != query[j]:
                    repeat = False
                    break
        want = 0 if probing else history_rows
        n = min(written, want, size)
        if repeat and n:  # a repeat completes no run and is at distance 0: its one earlier query is enough
            n = 1
        copy_last(ring, written, earlier[i, :n])
        rule, a, b = NO_RULE, 0, 0
        if probe_run == 0:
            rule = UNKNOWN
        elif not probing and not repeat:
            rule, a, b = probing_rule(earlier[i, :n], query, probe_run, noise, settings[ALIGNED_RUN],
                                      settings[MONOTONIC_RUN])
            if rule != NO_RULE:
                meta[slot, PROBING] = CLAIMED
        due = (not distribution) and count - 1 >= prada_min and (count - 1 - prada_min) % prada_every == 0
        if due:
            n_kept = min(meta[slot, DISTANCES], prada_window - 1, size)
            copy_last(distances[slot], meta[slot, DISTANCES], kept[:n_kept])
        if not distribution and written:
            if repeat:
                found[i] = 0.0
            else:
                found[i] = nearest(ring, written - min(written, prada_window, size), written, units, scaled)
            distances[slot, meta[slot, DISTANCES] % size] = found[i]
            meta[slot, DISTANCES] += 1
        if due and probe_run != 0 and found[i] >= 0 and 3 <= n_kept + 1 < coefficients.shape[0]:
            kept[n_kept] = found[i]  # the sample the test reads: the earlier distances and this one
            due = shapiro_w(kept[:n_kept + 1], coefficients[n_kept + 1]) < threshold
            kept[n_kept] = 0.0
            if due:
                meta[slot, DISTRIBUTION] = CLAIMED
        ring[written % size] = query
        meta[slot, SEEN] = now
        meta[slot, COUNT] = count
        meta[slot, WRITTEN] = written + 1
        fields[i, F_COUNT], fields[i, F_PROBING], fields[i, F_DISTRIBUTION], fields[i, F_DUE] = count, probing, flagged, due
        fields[i, F_REPEAT], fields[i, F_ROWS], fields[i, F_RULE], fields[i, F_A], fields[i, F_B] = repeat, n, rule, a, b
        quiet = quiet and not due and rule == NO_RULE
    return (QUIET if quiet and probe_run != 0 else ORDERED), n_kept


@_compiled
def shapiro_w(sample, a):
    """PRADA's statistic: the Shapiro-Wilk W of ``sample`` as ``scipy.stats.shapiro`` computes it, bit for
    bit (AS R94's W, in the order of scipy's ``swilk``, after its sort and shift), given ``a``, ``swilk``'s
    coefficients for this size (they depend on the size alone); 0 when every value is equal."""
    n = sample.shape[0]
    x = np.sort(sample)
    if n == 0 or x[0] == x[n - 1]:
        return 0.0
    x -= sample[n // 2]
    span = x[n - 1] - x[0]
    if n < 3 or span < 1e-19:
        return 1.0  # swilk's faults (too few values, range too small) leave W at its start value
    sx, sa, j = x[0] / span, -a[0], n - 2
    for i in range(1, n):
        sx += x[i] / span
        if i != j:
            sa += (-1 if i < j else 1) * a[min(i, j)]
        j -= 1
    sa /= n
    sx /= n
    ssa = ssx = sax = 0.0
    j = n - 1
    for i in range(n):
        asa = (-1 if i < j else 1) * a[min(i, j)] - sa if i != j else -sa
        xsx = x[i] / span - sx
        ssa += asa * asa
        ssx += xsx * xsx
        sax += asa * xsx
        j -= 1
    ssassx = math.sqrt(ssa * ssx)
    w = 1 - (ssassx - sax) * (ssassx + sax) / (ssa * ssx)
    return max(w, 0.75) if n == 3 else w


@_compiled
def probing_rule(recent, query, probe_run, noise, aligned_run, monotonic_run):
    """The probing rules over a client's recent queries (oldest first, not yet ``query``): returns (rule, a,
    b). ``CONSECUTIVE``: a = the run of single-feature changes ending at ``query``. ``ALIGNED``: a = the
    feature, b = how many distinct values of it the earlier queries that differ from ``query`` in that
    feature only (the others within ``noise``) hold. ``MONOTONIC``: a = the feature strictly monotonic over
    ``monotonic_run`` queries. Runs are counted back from the newest step and stop once all are broken; a
    repeat of the newest query completes no run (``NO_RULE``)."""
    n, width = recent.shape[0], recent.shape[1]
    if n:
        repeat = True
        for j in range(width):
            repeat = repeat and recent[n - 1, j] == query[j]
        if repeat:
            return NO_RULE, 0, 0
    single_run, single = 0, True
    rises, falls = np.zeros(width, np.int64), np.zeros(width, np.int64)
    rising, falling = np.ones(width, np.bool_), np.ones(width, np.bool_)
    for i in range(n - 1, -1, -1):
        changed, going = 0, False
        for j in range(width):
            newer = query[j] if i == n - 1 else recent[i + 1, j]
            older = recent[i, j]
            changed += newer != older
            rising[j] = rising[j] and newer > older
            falling[j] = falling[j] and newer < older
            rises[j] += rising[j]
            falls[j] += falling[j]
            going = going or rising[j] or falling[j]
        single = single and changed == 1
        single_run += single
        if not (single or going):
            break
    if single_run >= probe_run:
        return CONSECUTIVE, single_run, 0
    along = np.empty(n, np.int64)  # the one feature a row differs in beyond noise, else -1
    singles = 0
    for i in range(n):
        moved, along[i] = 0, -1
        for j in range(width):
            if abs(recent[i, j] - query[j]) > noise[j]:
                moved += 1
                along[i] = j
        if moved != 1:
            along[i] = -1
        singles += moved == 1
    if n >= aligned_run and singles >= aligned_run:
        for j in range(width):
            distinct = 0
            for i in range(n):
                if along[i] != j:
                    continue
                first = True
                for k in range(i):
                    if along[k] == j and recent[k, j] == recent[i, j]:
                        first = False
                        break
                distinct += first
            if distinct >= aligned_run:
                return ALIGNED, j, distinct
    for j in range(width):
        if max(rises[j], falls[j]) >= monotonic_run - 1:
            return MONOTONIC, j, 0
    return NO_RULE, 0, 0


_COEFFICIENTS: dict[int, np.ndarray] = {}


def coefficients(n: int) -> np.ndarray:
    """``swilk``'s coefficients for samples of size ``n``, made once per size by scipy's own routine."""
    found = _COEFFICIENTS.get(n)
    if found is None:
        from scipy.stats._ansari_swilk_statistics import swilk

        found = np.zeros(max(1, n // 2))
        if n >= 3:
            swilk(np.arange(n, dtype=np.float64), found, 0)
        _COEFFICIENTS[n] = found
    return found


@lru_cache(maxsize=8)
def coefficient_table(largest: int) -> np.ndarray:
    """Row ``n``: the coefficients for size ``n`` (what ``order`` reads when a PRADA test is due); shared,
    so read-only."""
    table = np.zeros((largest + 1, max(1, largest // 2)))
    for n in range(3, largest + 1):
        table[n, :n // 2] = coefficients(n)
    table.flags.writeable = False
    return table


def warm(shared: bool = True) -> None:
    """The kernels compiled (or loaded from numba's cache) for the array types the monitor passes: the
    in-process monitor's three, and with ``shared`` those of the host table and of Redis's histories. Called
    where a monitor is installed or a host table made, and by ``serve`` before its workers fork, so no
    answer waits on it (nor a lock: compiling takes seconds)."""
    width = 4
    meta, rows, distances = np.zeros((2, 8), np.int64), np.zeros((2, 3, width)), np.zeros((2, 3))
    query, units = np.ones(width), np.ones(width)
    probing_rule(rows[0], query, 1, units, 1, 2)
    nearest(rows[0], 0, 1, units, query)
    last_rows(rows[0], 1, 1)
    if shared:
        readonly = np.zeros((1, width))
        readonly.flags.writeable = False  # a history read from Redis
        probing_rule(readonly, query, 1, units, 1, 2)
        locate(meta, 0, 0, 0, 1, 1)
        settings = np.array([2, 3, 1, 1, 0, 1, 1, 1, 1, 2], np.int64)
        lock = np.zeros(1, np.int64)
        order(meta, rows, distances, lock, 1, np.zeros((1, 2), np.int64), query, np.ones(2 * width + 1), settings, 0,
              np.zeros((1, 10), np.int64), np.zeros(1), np.zeros((1, 2, width)), np.zeros(2), coefficient_table(3))
        shapiro_w(distances[0], coefficients(3))
        give(lock, 1)
        last(distances[0], 1, 1)
