"""Query-pattern monitor: flags probing and extraction from the stream of answered queries.

Two detectors per client (the key id, or the address without auth):
- single-feature probing, watched per API key AND per client address (rotating keys from one address,
  or one key from many addresses, does not reset it), three ways: a run of consecutive queries that each change exactly one
  feature of the previous one; within the client's last ``WINDOW`` queries, ``ALIGNED_RUN`` earlier
  queries that differ from the new one in one feature only, the others equal up to ``NOISE`` (a sweep
  or bisection with small noise on another feature, or with benign decoys between the probes); one
  feature strictly monotonic over ``MONOTONIC_RUN`` consecutive queries (a sweep under any noise);
- PRADA-style distribution anomaly (Juuti et al., 2019): the minimum distance from each new query to
  the client's earlier ones should look roughly normal for organic traffic; a Shapiro-Wilk W below a
  threshold calibrated on benign clients flags synthetic query sets.

It reads audit records, so it can run inside each worker or tail the shared audit log. It raises
alert records and can optionally block a flagged client; what it misses is measured and reported.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from flask import Flask, g, request
from scipy.stats import shapiro

from fraudpipe.data import FEATURE_NAMES, UNITS
from fraudpipe.serving.errors import ApiError

PROBE_RUN = 6
WINDOW = 20
ALIGNED_RUN = 6  # 5 distinct earlier values flagged 1 of 200 benign clients; 6 flagged none (two seeds)
MONOTONIC_RUN = 10
NOISE = np.array([10.0, 0.0, 0.0, 0.0])  # what "the other features did not move" allows: $10 of amount
PRADA_MIN = 20
PRADA_W = 0.40  # 1st percentile of W over benign clients (monitor_calibration.py recalibrates)
PRADA_WINDOW = 200
PRADA_EVERY = 4  # scipy's shapiro costs ~150 µs a call, nearly all argument handling: test every 4th query


@dataclass
class _ClientState:
    previous: np.ndarray | None = None
    single_feature_run: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    queries: list = field(default_factory=list)
    distances: list = field(default_factory=list)
    count: int = 0
    flagged: set = field(default_factory=set)


class QueryMonitor:
    def __init__(self, probe_run: int = PROBE_RUN, prada_min: int = PRADA_MIN, prada_w: float = PRADA_W,
                 block: bool = False) -> None:
        self.probe_run, self.prada_min, self.prada_w, self.block = probe_run, prada_min, prada_w, block
        self._clients: dict[str, _ClientState] = {}
        self._lock = threading.Lock()

    @staticmethod
    def identity(record: dict) -> str:
        return record.get("key_id") or f"addr:{record.get('client')}"

    @staticmethod
    def identities(record: dict) -> list[str]:
        """The key and the address, each watched on its own; an unknown address is not one identity."""
        found = [QueryMonitor.identity(record)]
        if record.get("key_id") and record.get("client"):
            found.append(f"addr:{record['client']}")
        return found

    def is_blocked(self, *identities: str) -> bool:
        states = [self._clients.get(identity) for identity in identities]
        return bool(self.block and any(state and state.flagged for state in states))

    def observe(self, record: dict) -> list[dict]:
        """Feed one audit record; returns the alerts it raised (each detector alerts once per identity).
        The probing detector watches the key and the address; the distribution detector, whose Shapiro-Wilk
        test is the monitor's main cost, the primary identity only (the key, or the address without auth)."""
        features = record.get("features")
        if not features or record.get("status") != 200:
            return []
        raw = np.asarray(features, dtype=float)
        with self._lock:
            return [alert for index, identity in enumerate(self.identities(record))
                    for alert in self._observe(identity, raw, distribution=index == 0)]

    def _observe(self, identity: str, raw: np.ndarray, distribution: bool) -> list[dict]:
        state = self._clients.setdefault(identity, _ClientState())
        state.count += 1
        x = raw / UNITS
        alerts = []
        if state.previous is not None:
            changed = int(np.sum(x != state.previous))
            state.single_feature_run = state.single_feature_run + 1 if changed == 1 else 0
        state.previous = x
        probing = probing_evidence(state.single_feature_run, self.probe_run, state.recent, raw)
        state.recent.append(raw)
        if probing and "probing" not in state.flagged:
            state.flagged.add("probing")
            alerts.append(self._alert(identity, "probing", state.count, probing[1], rule=probing[0]))
        if distribution:
            alerts += self._distribution(identity, state, x)
        return alerts

    def _distribution(self, identity: str, state: _ClientState, x: np.ndarray) -> list[dict]:
        if state.queries:
            state.distances.append(min_distance(state.queries, x))
        state.queries.append(x)
        if len(state.queries) > PRADA_WINDOW:
            state.queries.pop(0)
        if len(state.distances) < self.prada_min or "distribution" in state.flagged \
                or (len(state.distances) - self.prada_min) % PRADA_EVERY:
            return []
        w = prada_statistic(state.distances[-PRADA_WINDOW:])
        if w >= self.prada_w:
            return []
        state.flagged.add("distribution")
        return [self._alert(identity, "distribution", state.count,
                            f"Shapiro-Wilk W {w:.3f} < {self.prada_w} over {len(state.distances)} distances",
                            rule="prada")]

    @staticmethod
    def _alert(identity: str, detector: str, query: int, detail: str, rule: str) -> dict:
        return {"type": "alert", "detector": detector, "rule": rule, "client_identity": identity,
                "at_query": query, "detail": detail}


def install(app: Flask, service) -> None:
    """Observes every answered record; with ``FRAUDPIPE_MONITOR_BLOCK`` a flagged client gets 403.
    Alerts leave the service as audit records and log lines, the outputs an operator already reads."""
    monitor = QueryMonitor(block=service.settings.monitor_block)

    @app.before_request
    def refuse_flagged() -> None:
        if request.endpoint == "predict" and monitor.is_blocked(
                *QueryMonitor.identities({"key_id": g.key_id, "client": request.remote_addr})):
            raise ApiError(403, "blocked", "this client was flagged for probing; contact the service owner")

    def observe(records: list[dict]) -> list[dict]:
        alerts = monitor.observe(records[0])
        for alert in alerts:
            app.logger.warning("monitor alert: %s", alert, extra={"monitor_alert": alert})
        return [{"ts": records[0]["ts"], "request_id": records[0]["request_id"], **alert} for alert in alerts]

    service.sinks.append(observe)


def probing_evidence(consecutive: int, probe_run: int, recent, raw: np.ndarray) -> tuple[str, str] | None:
    """Which rule says the new query ``raw`` (raw feature units) completes a probing run, and why; or None."""
    if consecutive >= probe_run:
        return "consecutive-run", f"{consecutive} consecutive single-feature changes"
    if len(recent) < ALIGNED_RUN:
        return None
    window = np.array(recent)
    moved = np.abs(window - raw) > NOISE
    along = moved & (moved.sum(axis=1) == 1)[:, None]
    for j in np.flatnonzero(along.sum(axis=0) >= ALIGNED_RUN):
        values = set(window[along[:, j], j].tolist())
        if len(values) >= ALIGNED_RUN:
            return "aligned", (f"{len(values)} of the last {len(window)} queries differ from this one only in "
                               f"{FEATURE_NAMES[j]} (others within noise)")
    if len(recent) >= MONOTONIC_RUN - 1:
        steps = np.diff(np.vstack([window[-(MONOTONIC_RUN - 1):], raw]), axis=0)
        monotonic = (steps > 0).all(axis=0) | (steps < 0).all(axis=0)
        if monotonic.any():
            return "monotonic", (f"{FEATURE_NAMES[int(np.argmax(monotonic))]} strictly monotonic over "
                                 f"{MONOTONIC_RUN} queries")
    return None


def min_distance(previous, x: np.ndarray) -> float:
    """Distance (in feature units) from a query to the nearest of the client's earlier queries."""
    return float(np.min(np.linalg.norm(np.asarray(previous) - x, axis=1)))


def session_statistic(rows) -> float:
    """PRADA's W for one whole client session, as the monitor would compute it at the session's end."""
    xs = np.asarray(rows, dtype=float) / UNITS
    return prada_statistic([min_distance(xs[:i], xs[i]) for i in range(1, len(xs))])


def prada_statistic(distances) -> float:
    values = np.asarray(distances, dtype=float)
    if np.ptp(values) == 0:
        return 0.0
    return float(shapiro(values).statistic)
