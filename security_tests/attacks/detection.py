"""MED-5: which attacks the query monitor notices, at which query, and how often it cries wolf."""

from __future__ import annotations

from typing import Callable

import numpy as np

from fraudpipe.data import feature_matrix, generate_transactions
from fraudpipe.serving.monitor import QueryMonitor


def first_alerts(records: list[dict]) -> dict[str, int]:
    """Detector -> the client's query number at which it first fired."""
    found: dict[str, int] = {}
    for record in records:
        if record.get("type") == "alert":
            found.setdefault(record["detector"], record["at_query"])
    return found


def detect_attack(run_attack: Callable[[], dict], read_alerts: Callable[[], list[dict]]) -> dict:
    """``read_alerts`` returns the monitor's alert records so far (in order)."""
    before = len(read_alerts())
    attack = run_attack()
    alerts = first_alerts(read_alerts()[before:])
    sent = attack.get("total_queries") or attack.get("sent")
    return {"queries_sent": sent, "alerts": alerts, "flagged": bool(alerts),
            "first_flag_at_query": min(alerts.values()) if alerts else None,
            "attack_summary": attack.get("summary")}


def benign_sessions(n_clients: int, queries: int, seed: int) -> list[list[list[float]]]:
    """Organic clients: each submits transactions drawn from the recipe the model was trained on."""
    rows = feature_matrix(generate_transactions(n_clients * queries, seed=seed))
    return [rows[i * queries:(i + 1) * queries].tolist() for i in range(n_clients)]


def replay(monitor: QueryMonitor, sessions: list[list[list[float]]]) -> list[set[str]]:
    flagged = []
    for index, session in enumerate(sessions):
        detectors = set()
        for features in session:
            for alert in monitor.observe({"key_id": f"benign-{index}", "features": features, "status": 200}):
                detectors.add(alert["detector"])
        flagged.append(detectors)
    return flagged


def calibrate_and_measure_fpr(clients: int = 200, queries: int = 60) -> dict:
    """Calibrate the PRADA threshold on one benign set (1st percentile of W); measure both detectors' false
    positives with the deployed settings on another."""
    from fraudpipe.serving.monitor import PRADA_W, session_statistic

    ws = [session_statistic(session) for session in benign_sessions(clients, queries, seed=101)]
    calibrated = float(np.percentile(ws, 1))
    measured = replay(QueryMonitor(), benign_sessions(clients, queries, seed=202))
    return {"benign_clients": clients, "queries_each": queries, "calibrated_prada_w": round(calibrated, 4),
            "deployed_prada_w": PRADA_W,
            "false_positive_rate": round(sum(bool(f) for f in measured) / clients, 4),
            "false_positives_by_detector": {d: sum(d in f for f in measured) for d in ("probing", "distribution")}}


