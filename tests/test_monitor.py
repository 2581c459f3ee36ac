"""The probing monitor compares each query with the client's recent window, per key and per address."""

import numpy as np

from fraudpipe.serving.monitor import QueryMonitor

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
    """The monitor calls the routine behind ``scipy.stats.shapiro`` directly (its wrapper costs ~130 µs a
    call); a scipy upgrade that changes either must not change W."""
    from scipy.stats import shapiro

    from fraudpipe.serving.monitor import prada_statistic

    rng = np.random.default_rng(3)
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
