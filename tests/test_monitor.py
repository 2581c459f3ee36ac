"""The probing monitor compares each query with the client's recent window, per key and per address."""

import itertools

import numpy as np
import pytest

from fraudpipe.serving.monitor import (ALIGNED_RUN, MONOTONIC_RUN, NOISE, PROBE_RUN, WINDOW, QueryMonitor,
                                       min_distance, probing_verdict)

SEED = [800.0, 2.0, 20.0, 1.0]


def _feed(monitor, rows, keys, addresses):
    alerts = []
    for i, row in enumerate(rows):
        record = {"key_id": keys[i % len(keys)], "client": addresses[i % len(addresses)], "features": row,
                  "status": 200}
        alerts += [(a["client_identity"], a["detector"], a["at_query"]) for a in monitor.observe(record)]
    return alerts


def _sweep(noise=0.0, decoys=0, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for hour in range(24):
        rows.append([SEED[0] + rng.uniform(-noise, noise), float(hour), SEED[2], SEED[3]])
        rows += [[float(rng.uniform(1, 2000)), float(rng.integers(0, 24)), float(rng.integers(0, 31)),
                  float(rng.integers(0, 2))] for _ in range(decoys)]
    return rows


def test_noisy_and_decoy_interleaved_sweeps_are_flagged_as_probing():
    assert ("k", "probing", 9) in _feed(QueryMonitor(), _sweep(noise=10.0), ["k"], ["198.51.100.1"])
    assert ("k", "probing", 13) in _feed(QueryMonitor(), _sweep(decoys=1), ["k"], ["198.51.100.1"])


def test_rotating_keys_from_one_address_and_one_key_from_many_addresses_are_flagged():
    rotated = _feed(QueryMonitor(), _sweep(noise=10.0), [f"k{i}" for i in range(24)], ["198.51.100.1"])
    assert [(who, detector) for who, detector, _ in rotated] == [("addr:198.51.100.1", "probing")]
    spread = _feed(QueryMonitor(), _sweep(noise=10.0), ["k"], [f"198.51.100.{i}" for i in range(24)])
    assert [(who, detector) for who, detector, _ in spread] == [("k", "probing")]


def test_a_flagged_address_is_blocked_whatever_key_it_uses():
    monitor = QueryMonitor(block=True)
    _feed(monitor, _sweep(noise=10.0), [f"k{i}" for i in range(24)], ["198.51.100.1"])
    assert monitor.is_blocked("fresh-key", "addr:198.51.100.1")
    assert not monitor.is_blocked("fresh-key", "addr:198.51.100.2")


def test_prada_statistic_is_scipy_shapiro_w_without_the_wrapper():
    """The monitor computes W compiled (``monitor_kernels.shapiro_w``, scipy's ``swilk`` in its order, with
    swilk's own coefficients): it must be scipy's W bit for bit at every size the monitor tests, and a scipy
    upgrade that changes W must make this fail."""
    from scipy.stats import shapiro

    from fraudpipe.serving.monitor import PRADA_WINDOW, prada_statistic

    rng = np.random.default_rng(3)
    for size in range(3, PRADA_WINDOW + 1):
        sample = rng.exponential(size=size)
        assert prada_statistic(sample) == float(shapiro(sample).statistic), size
    for size in (3, 20, 57, 200):
        for sample in (rng.normal(size=size), rng.exponential(size=size), rng.integers(0, 4, size).astype(float)):
            expected = 0.0 if np.ptp(sample) == 0 else float(shapiro(sample).statistic)
            assert prada_statistic(sample) == expected
    assert prada_statistic([2.0] * 30) == 0.0


def test_monitor_memory_per_client_is_bounded():
    """Distances used to grow with every query a client ever sent (a slow leak per long-lived key)."""
    monitor = QueryMonitor()
    rng = np.random.default_rng(4)
    for _ in range(1000):
        monitor.observe({"key_id": "k", "features": rng.uniform(1, 20, 4).tolist(), "status": 200})
    state = monitor._clients["k"]
    assert len(state.distances) <= 200 and state.queries.shape[0] <= 200


class _SharedWorkers:
    """Several workers' monitors over one Redis, fed in turn: what ``serve --workers N`` does per answer."""

    def __init__(self, url: str, workers: int) -> None:
        from fraudpipe.serving.monitor_store import SharedMonitorStore

        self.stores = [SharedMonitorStore(url) for _ in range(workers)]
        self.calls = 0

    def observe(self, record: dict) -> list[dict]:
        from fraudpipe.serving.monitor import observe_shared

        store = self.stores[self.calls % len(self.stores)]
        self.calls += 1
        return observe_shared(store, QueryMonitor(), QueryMonitor.identities(record),
                              np.array(record["features"], dtype=np.float64)) or []


class _HostWorkers(_SharedWorkers):
    """The workers of one host sharing ``serve``'s mapped table (alerts still go to the Redis stream)."""

    def __init__(self, url: str, workers: int) -> None:
        from fraudpipe.serving.monitor_host import HostMonitorStore
        from fraudpipe.serving.monitor_store import SharedMonitorStore

        self.stores = [HostMonitorStore(4, SharedMonitorStore(url), slots=64)] * workers
        self.calls = 0


def _narrow(seed=4, n=40):
    """Queries packed along two values: PRADA's distance distribution is far from normal (flagged at 21)."""
    rng = np.random.default_rng(seed)
    return [[float(rng.uniform(100, 101)), 3.0, float(rng.integers(0, 2)), 0.0] for _ in range(n)]


def _benign(seed=3, n=60):
    rng = np.random.default_rng(seed)
    return [[float(rng.uniform(1, 2000)), float(rng.integers(0, 24)), float(rng.integers(0, 31)),
             float(rng.integers(0, 2))] for _ in range(n)]


def test_shared_state_raises_every_alert_at_the_query_one_process_raises_it(redis_url):
    """The same rules over the shared history: consecutive, aligned (noise, decoys), monotonic and PRADA
    alerts come at the same query with one, two or four workers as in one process, each alert once."""
    import redis

    cases = [(_sweep(), ["k"], ["198.51.100.1"]), (_sweep(noise=10.0), ["k"], ["198.51.100.1"]),
             (_sweep(decoys=1), ["k"], ["198.51.100.1"]), (_sweep(), [f"k{i}" for i in range(12)], ["198.51.100.2"]),
             (_narrow(), ["k"], ["198.51.100.3"]), (_benign(), ["k"], ["198.51.100.4"])]
    for rows, keys, addresses in cases:
        expected = _feed(QueryMonitor(), rows, keys, addresses)
        for shared, workers in itertools.product((_SharedWorkers, _HostWorkers), (1, 2, 4)):
            redis.Redis.from_url(redis_url).flushall()
            assert _feed(shared(redis_url, workers), rows, keys, addresses) == expected, (shared, workers, keys)
        stream = redis.Redis.from_url(redis_url).xrange("fraudpipe:mon:alerts")
        assert len(stream) == len(expected)  # the last run's alerts, each once
    detectors = {alert[1] for rows, keys, addresses in cases for alert in _feed(QueryMonitor(), rows, keys, addresses)}
    assert detectors == {"probing", "distribution"} and _feed(QueryMonitor(), *cases[-1]) == []


def test_the_alert_stream_is_read_in_order_by_monitor_stream(redis_url, trained, capsys):
    import redis

    from fraudpipe.cli import main

    redis.Redis.from_url(redis_url).flushall()
    alerts = _feed(_SharedWorkers(redis_url, 2), _sweep(), ["k"], ["198.51.100.1"])
    settings = {"FRAUDPIPE_RATE_LIMIT_STORAGE": redis_url}
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, settings):
        assert main(["monitor", "--stream"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(a["client_identity"], a["detector"], a["at_query"]) for a in map(__import__("json").loads, printed)] \
        == alerts


def test_a_monitor_whose_state_cannot_be_read_answers_503_never_unwatched(trained, assessor_key, redis_url, tmp_path):
    """A client's state of the wrong type: the answer is held back (503), not given unwatched; Redis out of
    reach: the store refuses (the limiter, which reaches the same Redis first, answers 503 too)."""
    import pytest
    import redis

    from fraudpipe.serving.app import create_app
    from fraudpipe.serving.audit import read_records
    from fraudpipe.serving.monitor_store import SharedMonitorStore
    from fraudpipe.serving.ratelimit_store import StoreUnavailable
    from security_tests.servers import free_port

    body = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}
    redis.Redis.from_url(redis_url).flushall()
    settings = trained.with_overrides(rate_limit_storage=redis_url, rate_limit="1000/minute",
                                      audit_log=tmp_path / "audit.jsonl")
    app = create_app("hardened", settings=settings)
    key_id = app.extensions["fraudpipe"].keys.identify(assessor_key)
    redis.Redis.from_url(redis_url).set(f"fraudpipe:mon:{key_id}:f", "not a hash")
    response = app.test_client().post("/predict", json=body, headers={"X-API-Key": assessor_key})
    assert response.status_code == 503 and response.json["error"] == "monitor_unavailable", response.json
    assert "prediction" not in response.json and int(response.headers["Retry-After"]) >= 1
    record = read_records(tmp_path / "audit.jsonl")[-1]
    assert record["status"] == 503 and record["prediction"] is None
    with pytest.raises(StoreUnavailable):
        SharedMonitorStore(f"redis://127.0.0.1:{free_port()}", timeout=0.2).observe(
            ["k"], np.zeros(4), True, 20, 200, 20, 4)


def test_rotating_ipv6_addresses_inside_one_slash_64_is_one_client():
    """A host routinely holds a whole /64: without a key, each address of it must not be a fresh history."""
    addresses = [f"2001:db8:7:7::{i:x}" for i in range(1, 25)]
    spread = _feed(QueryMonitor(), _sweep(), [None], addresses)
    assert spread == _feed(QueryMonitor(), _sweep(), [None], ["2001:db8:7:7::1"]) and spread


def test_a_worker_killed_holding_the_hosts_table_does_not_stop_the_others(redis_url):
    """The table's lock is a record lock the kernel drops with its process: a semaphore would stay taken."""
    import os
    import time

    from fraudpipe.serving.monitor_host import HostMonitorStore
    from fraudpipe.serving.monitor_store import SharedMonitorStore

    store = HostMonitorStore(4, SharedMonitorStore(redis_url), slots=16)
    child = os.fork()
    if child == 0:
        store._lock.__enter__()
        os._exit(0)  # dies holding the lock
    os.waitpid(child, 0)
    started = time.monotonic()
    assert store.observe([f"k{time.monotonic_ns()}"], np.zeros(4), False, 20, 200, 20, 4)[0].count == 1
    assert time.monotonic() - started < 0.5


def test_workers_answering_one_client_at_once_lose_none_of_its_queries(redis_url):
    """Two workers ordering the same client's queries at the same moment: the lock (retried without
    sleeping first) must still make each update whole, so the count and the history hold every query."""
    import os
    import time

    from fraudpipe.serving.monitor_host import COUNT, DISTANCES, WRITTEN, HostMonitorStore
    from fraudpipe.serving.monitor_store import SharedMonitorStore

    store = HostMonitorStore(4, SharedMonitorStore(redis_url), slots=16)
    store.observe(["k", "addr:192.0.2.9"], np.zeros(4), False, 20, 200, 20, 4)
    each = 1500
    children = []
    for worker in range(2):
        child = os.fork()
        if child == 0:
            try:
                for i in range(each):
                    store.observe(["k", "addr:192.0.2.9"], np.array([i, worker, 1.0, 0.0]), False, 20, 200, 20, 4)
            finally:
                os._exit(0)
        children.append(child)
    for child in children:
        os.waitpid(child, 0)
    now = time.monotonic_ns() // 1000
    for name in ("k", "addr:192.0.2.9"):
        fields = store.meta[store._locate(name, now)].tolist()
        assert fields[COUNT] == fields[WRITTEN] == 2 * each + 1, name
    assert store.meta[store._locate("k", now), DISTANCES] == 2 * each


def test_a_hosts_table_that_cannot_be_used_refuses_the_answer_never_lets_it_through(monkeypatch, redis_url):
    """A lock held too long (a stuck worker), a Redis that cannot say what it holds for a new client, or
    one that cannot take an alert: each is ``StoreUnavailable`` (503 at the gate), and an alert Redis did
    not take is raised again on the next answer, not lost."""
    import os
    import time

    import pytest

    from fraudpipe.serving.monitor_host import HostMonitorStore, _HostLock
    from fraudpipe.serving.monitor_store import SharedMonitorStore
    from fraudpipe.serving.ratelimit_store import StoreUnavailable
    from security_tests.servers import free_port

    store = HostMonitorStore(4, SharedMonitorStore(redis_url), slots=16)
    store.observe(["k"], np.zeros(4), False, 20, 200, 20, 4)
    monkeypatch.setattr(_HostLock, "timeout", 0.2)
    child = os.fork()
    if child == 0:
        store._lock.__enter__()
        time.sleep(1.5)
        os._exit(0)
    time.sleep(0.3)
    with pytest.raises(StoreUnavailable):
        store.observe(["k"], np.zeros(4), False, 20, 200, 20, 4)
    os.waitpid(child, 0)
    store.alerts = SharedMonitorStore(f"redis://127.0.0.1:{free_port()}", timeout=0.2)
    with pytest.raises(StoreUnavailable):
        store.observe(["new"], np.zeros(4), False, 20, 200, 20, 4)
    with pytest.raises(StoreUnavailable):
        store.raise_alert("k", {"detector": "probing", "client_identity": "k"})
    assert store.observe(["k"], np.zeros(4), True, 20, 200, 20, 4)[0].flags == set()  # taken back


def test_a_hosts_table_forgets_nothing_a_flood_or_a_restart_would_take(redis_url):
    """Red-team findings, both measured live before the fix: 14,000 new identities pushed a quiet prober's
    history out of the table (first refusal at query 14 instead of 8), and a restarted host answered a
    client flagged before the restart (its new table never read the flags in Redis). An identity pushed
    out is written to Redis and read back; a new table reads flags and history for clients it lacks."""
    import redis

    from fraudpipe.serving.monitor_host import HostMonitorStore
    from fraudpipe.serving.monitor_store import SharedMonitorStore

    redis.Redis.from_url(redis_url).flushall()
    rows, keys = _sweep(), ["k"]
    expected = _feed(QueryMonitor(), rows, keys, ["198.51.100.9"])
    tables = [HostMonitorStore(4, SharedMonitorStore(redis_url), slots=8)]

    class Flooded(_SharedWorkers):
        def observe(self, record):
            from fraudpipe.serving.monitor import observe_shared

            if self.calls == 5:  # a pause, while thousands of new clients take every slot
                for i in range(40):
                    tables[0].observe([f"addr:203.0.113.{i}"], np.ones(4) * i, False, 20, 200, 20, 4)
            self.calls += 1
            return observe_shared(tables[0], QueryMonitor(), QueryMonitor.identities(record),
                                  np.array(record["features"], dtype=np.float64)) or []

    assert _feed(Flooded(redis_url, 1), rows, keys, ["198.51.100.9"]) == expected
    restarted = HostMonitorStore(4, SharedMonitorStore(redis_url), slots=8)
    assert restarted.observe(["k"], np.zeros(4), True, 20, 200, 20, 4) == {"flagged"}


def test_a_history_that_is_no_whole_number_of_rows_is_an_outage_not_a_crash(redis_url):
    """A state this code did not write (three bytes of history) must refuse the answer (503), through the
    host table (read back for a client it lacks) and through Redis alike; before, it raised ValueError (500)."""
    import pytest
    import redis

    from fraudpipe.serving.monitor_host import HostMonitorStore
    from fraudpipe.serving.monitor_store import SharedMonitorStore
    from fraudpipe.serving.ratelimit_store import StoreUnavailable

    redis.Redis.from_url(redis_url).flushall()
    redis.Redis.from_url(redis_url).set("fraudpipe:mon:odd:h", b"abc")
    for store in (HostMonitorStore(4, SharedMonitorStore(redis_url), slots=16), SharedMonitorStore(redis_url)):
        with pytest.raises(StoreUnavailable):
            store.observe(["odd"], np.zeros(4), False, 20, 200, 20, 4)


def test_a_hosts_table_survives_a_restart_a_second_host_and_its_own_claims(redis_url):
    """Second red-team pass, each measured live before the fix: a restart forgot a prober's history (first
    refusal at query 14 instead of 8), a host that had seen a second host went back to its stale table
    after a reload (4 answers to a flagged client), and one request's second identity could push out its
    first, both then written to one slot. ``serve`` writes the table out when its workers stop; a second
    host seen by any worker keeps the whole host on Redis; a request never gives up a slot it holds."""
    import redis

    from fraudpipe.serving.monitor_host import HostMonitorStore
    from fraudpipe.serving.monitor_store import SharedMonitorStore

    redis.Redis.from_url(redis_url).flushall()
    rows = _sweep()
    before = HostMonitorStore(4, SharedMonitorStore(redis_url), slots=64)
    for row in rows[:6]:
        before.observe(["k"], np.array(row), True, 20, 200, 20, 4)
    assert before.write_out() == 1
    after = HostMonitorStore(4, SharedMonitorStore(redis_url), slots=64)
    view = after.observe(["k"], np.array(rows[6]), True, 20, 200, 20, 4)[0]
    assert view.count == 7 and view.history.tolist() == rows[:6]

    assert after.alone(1) and not after.alone(2) and not after.alone(1)  # a reloaded worker starts at 1
    assert after.write_out() == 0  # Redis, not this table, holds the newest histories once two hosts served

    full = HostMonitorStore(4, SharedMonitorStore(redis_url), slots=8)  # every slot is every identity's candidate
    full.observe(["key-a"], np.zeros(4), False, 20, 200, 20, 4)  # the least recently seen, when the table is full
    for i in range(7):
        full.observe([f"addr:192.0.2.{i}"], np.zeros(4), False, 20, 200, 20, 4)
    full.observe(["key-a", "addr:198.51.100.7"], np.ones(4), False, 20, 200, 20, 4)
    now = __import__("time").monotonic_ns() // 1000
    slots = [full._locate(name, now) for name in ("key-a", "addr:198.51.100.7")]
    assert slots[0] != slots[1]


def _rules_as_written(history: np.ndarray, query: np.ndarray) -> str | None:
    """The probing rules as the monitor's docstring states them, counted forward over the whole history
    with numpy: the oracle for the compiled rules, which count back over the last ``WINDOW`` queries."""
    rows = [*history.tolist(), query.tolist()]
    if len(rows) > 1 and rows[-1] == rows[-2]:
        return None
    single = rises = falls = None
    for old, new in zip(rows, rows[1:]):
        changed = [a != b for a, b in zip(old, new)]
        single = (single or 0) + 1 if sum(changed) == 1 else 0
        rises = [(r if rises else 0) + 1 if b > a else 0 for r, a, b in zip(rises or [0] * 4, old, new)]
        falls = [(f if falls else 0) + 1 if b < a else 0 for f, a, b in zip(falls or [0] * 4, old, new)]
    if single is not None and single >= PROBE_RUN:
        return "consecutive-run"
    window = history[-WINDOW:]
    moved = np.abs(window - query) > NOISE
    along = window[moved.sum(axis=1) == 1]
    for j in range(4):
        if len(set(along[moved[moved.sum(axis=1) == 1][:, j], j].tolist())) >= ALIGNED_RUN:
            return "aligned"
    if rises is not None and max(max(rises), max(falls)) >= MONOTONIC_RUN - 1:
        return "monotonic"
    return None


def test_the_compiled_probing_rules_are_the_rules_as_written():
    """The compiled rules (``monitor_kernels``) count runs back from the newest query and stop early; they
    must give the verdict of the rules counted forward over the whole history, over sweeps, repeats, ties
    and random queries, and name the same rule."""
    rng = np.random.default_rng(7)
    verdicts = set()
    for trial in range(600):
        length = int(rng.integers(0, 40))
        choices = rng.integers(0, 3, size=(length + 1, 4)).astype(float)  # few values: ties and single changes
        if trial % 3 == 0:
            choices[:, int(rng.integers(0, 4))] = np.sort(rng.uniform(0, 100, length + 1))  # a sweep
        if trial % 5 == 0:
            choices[:, 0] += rng.uniform(-9, 9, length + 1)  # within the amount's noise
        if trial % 7 == 0:  # a walk that changes one feature a step
            for i in range(1, length + 1):
                choices[i] = choices[i - 1]
                choices[i, int(rng.integers(0, 4))] += float(rng.choice([-1.0, 1.0]))
        history, query = choices[:-1], choices[-1]
        found = probing_verdict(history[-WINDOW:], query)
        expected = _rules_as_written(history, query)
        assert (found and found[0]) == expected, (trial, history, query)
        verdicts.add(expected)
    assert verdicts == {None, "consecutive-run", "aligned", "monotonic"}


def test_the_compiled_prada_distance_is_the_nearest_query():
    rng = np.random.default_rng(8)
    for n in (1, 2, 7, 200):
        earlier, query = rng.uniform(0, 5, size=(n, 4)), rng.uniform(0, 5, size=4)
        assert min_distance(earlier, query) == pytest.approx(np.sqrt(((earlier - query) ** 2).sum(axis=1).min()),
                                                             rel=1e-12)
