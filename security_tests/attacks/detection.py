"""MED-5: which attacks the query monitor notices, and at which query.

The monitor is observed only through the service's outputs (alert log lines, alert audit records):
``read_alerts`` returns the alert records the service has emitted so far.
"""

from __future__ import annotations

from typing import Callable

from security_tests.contract import Evidence


def first_alerts(records: list[dict]) -> dict[str, int]:
    """Detector -> the client's query number at which it first fired."""
    found: dict[str, int] = {}
    for record in records:
        if record.get("type") == "alert":
            found.setdefault(record["detector"], record["at_query"])
    return found


def detect_attack(name: str, run_attack: Callable[[], Evidence], read_alerts: Callable[[], list[dict]]) -> Evidence:
    """Run an attack and read the alerts it raised; the attack succeeds here when it goes unnoticed."""
    before = len(read_alerts())
    attack = run_attack()
    alerts = first_alerts(read_alerts()[before:])
    first = min(alerts.values()) if alerts else None
    summary = (f"{name} flagged by {sorted(alerts)} at query {first} of {attack.queries}" if alerts
               else f"{name} ({attack.queries} queries) raised no alert")
    return Evidence(attack_succeeded=not alerts, summary=summary, queries=attack.queries,
                    measurements={"first_flag_at_query": first},
                    details={"alerts": alerts, "attack_summary": attack.summary})
