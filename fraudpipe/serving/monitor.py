"""Query-pattern monitor: flags probing and extraction from the stream of answered queries.

Two detectors per client (key id, or address without auth):
- sequential single-feature probing: a run of consecutive queries that each change exactly one
  feature of the previous one, the signature of a sweep or a bisection;
- PRADA-style distribution anomaly (Juuti et al., 2019): the minimum distance from each new query to
  the client's earlier ones should look roughly normal for organic traffic; a Shapiro-Wilk W below a
  threshold calibrated on benign clients flags synthetic query sets.

It reads audit records, so it can run inside each worker or tail the shared audit log. It raises
alert records and can optionally block a flagged client; what it misses is measured and reported.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from flask import Flask, g, request
from scipy.stats import shapiro

from fraudpipe.data import UNITS
from fraudpipe.serving.errors import ApiError

PROBE_RUN = 6
PRADA_MIN = 20
PRADA_W = 0.40  # 1st percentile of W over benign clients (monitor_calibration.py recalibrates)
PRADA_WINDOW = 200


@dataclass
class _ClientState:
    previous: np.ndarray | None = None
    single_feature_run: int = 0
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

    def is_blocked(self, identity: str) -> bool:
        state = self._clients.get(identity)
        return bool(self.block and state and state.flagged)

    def observe(self, record: dict) -> list[dict]:
        """Feed one audit record; returns the alerts it raised (each detector alerts once per client)."""
        features = record.get("features")
        if not features or record.get("status") != 200:
            return []
        identity = self.identity(record)
        x = np.asarray(features, dtype=float) / UNITS
        with self._lock:
            state = self._clients.setdefault(identity, _ClientState())
            state.count += 1
            alerts = []
            if state.previous is not None:
                changed = int(np.sum(x != state.previous))
                state.single_feature_run = state.single_feature_run + 1 if changed == 1 else 0
                if state.single_feature_run >= self.probe_run and "probing" not in state.flagged:
                    state.flagged.add("probing")
                    alerts.append(self._alert(identity, "probing", state.count,
                                              f"{state.single_feature_run} consecutive single-feature changes"))
            if state.queries:
                state.distances.append(min_distance(state.queries, x))
            state.queries.append(x)
            if len(state.queries) > PRADA_WINDOW:
                state.queries.pop(0)
            state.previous = x
            if len(state.distances) >= self.prada_min and "distribution" not in state.flagged:
                w = prada_statistic(state.distances[-PRADA_WINDOW:])
                if w < self.prada_w:
                    state.flagged.add("distribution")
                    alerts.append(self._alert(identity, "distribution", state.count,
                                              f"Shapiro-Wilk W {w:.3f} < {self.prada_w} over {len(state.distances)} distances"))
            return alerts

    @staticmethod
    def _alert(identity: str, detector: str, query: int, detail: str) -> dict:
        return {"type": "alert", "detector": detector, "client_identity": identity, "at_query": query,
                "detail": detail}


def install(app: Flask, service) -> None:
    """Observes every answered record; with ``FRAUDPIPE_MONITOR_BLOCK`` a flagged client gets 403.
    Alerts leave the service as audit records and log lines, the outputs an operator already reads."""
    monitor = QueryMonitor(block=service.settings.monitor_block)

    @app.before_request
    def refuse_flagged() -> None:
        if request.endpoint == "predict" and monitor.is_blocked(
                QueryMonitor.identity({"key_id": g.key_id, "client": request.remote_addr})):
            raise ApiError(403, "blocked", "this client was flagged for probing; contact the service owner")

    def observe(records: list[dict]) -> list[dict]:
        alerts = monitor.observe(records[0])
        for alert in alerts:
            app.logger.warning("monitor alert: %s", alert, extra={"monitor_alert": alert})
        return [{"ts": records[0]["ts"], "request_id": records[0]["request_id"], **alert} for alert in alerts]

    service.sinks.append(observe)


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
