"""The monitor's own calibration: how often it flags organic clients, and where the PRADA threshold sits.

Benign clients submit transactions drawn from the recipe the model was trained on. The threshold is
calibrated on one benign set (1st percentile of W) and the false-positive rate measured with the
deployed settings on another, so the number is not fitted to itself.
"""

from __future__ import annotations

import numpy as np

from fraudpipe.data import feature_matrix, generate_transactions
from fraudpipe.serving.monitor import PRADA_W, QueryMonitor, session_statistic


def benign_sessions(n_clients: int, queries: int, seed: int) -> list[list[list[float]]]:
    rows = feature_matrix(generate_transactions(n_clients * queries, seed=seed))
    return [rows[i * queries:(i + 1) * queries].tolist() for i in range(n_clients)]


def replay(monitor: QueryMonitor, sessions: list[list[list[float]]]) -> list[set[str]]:
    """The detectors that fired for each session, fed to ``monitor`` as answered audit records."""
    flagged = []
    for index, session in enumerate(sessions):
        detectors = set()
        for features in session:
            for alert in monitor.observe({"key_id": f"benign-{index}", "features": features, "status": 200}):
                detectors.add(alert["detector"])
        flagged.append(detectors)
    return flagged


def calibrate_and_measure_fpr(clients: int = 200, queries: int = 60) -> dict:
    ws = [session_statistic(session) for session in benign_sessions(clients, queries, seed=101)]
    calibrated = float(np.percentile(ws, 1))
    measured = replay(QueryMonitor(), benign_sessions(clients, queries, seed=202))
    return {"benign_clients": clients, "queries_each": queries, "calibrated_prada_w": round(calibrated, 4),
            "deployed_prada_w": PRADA_W,
            "false_positive_rate": round(sum(bool(f) for f in measured) / clients, 4),
            "false_positives_by_detector": {d: sum(d in f for f in measured) for d in ("probing", "distribution")}}
