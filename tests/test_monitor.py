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
