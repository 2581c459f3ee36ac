"""MED-5: which attacks the query monitor notices, and at which query.

The monitor is observed only through the service's outputs (alert log lines, alert audit records):
``read_alerts`` returns the alert records the service has emitted so far.
"""

from __future__ import annotations

from typing import Callable

from security_tests.contract import Evidence


def first_alerts(records: list[dict]) -> dict[str, int]:
    """Detector (and ``detector/rule``) -> the client's query number at which it first fired."""
    found: dict[str, int] = {}
    for record in records:
        if record.get("type") == "alert":
            found.setdefault(record["detector"], record["at_query"])
            if record.get("rule"):
                found.setdefault(f"{record['detector']}/{record['rule']}", record["at_query"])
    return found


def detect_attack(name: str, run_attack: Callable[[], Evidence], read_alerts: Callable[[], list[dict]],
                  expect: dict[str, int] | None = None) -> Evidence:
    """Run an attack and read the alerts it raised; the attack succeeds here when it goes unnoticed.

    ``expect`` names detectors that must each fire by a given query: one detector that stopped working
    is then not hidden by another that still fires, and a detector that fires later than it did when
    measured (a loosened threshold) counts as missing.
    """
    before = len(read_alerts())
    attack = run_attack()
    alerts = first_alerts(read_alerts()[before:])
    first = min(alerts.values()) if alerts else None
    missed = {d: by for d, by in (expect or {}).items() if alerts.get(d) is None or alerts[d] > by}
    summary = (f"{name} flagged by {sorted(d for d in alerts if '/' not in d)} at query {first} of "
               f"{attack.queries}" if alerts
               else f"{name} ({attack.queries} queries) raised no alert")
    if missed:
        summary += "; " + ", ".join(f"{d} detector did not fire by query {by}" for d, by in missed.items())
    return Evidence(attack_succeeded=not alerts or bool(missed), summary=summary, queries=attack.queries,
                    measurements={"first_flag_at_query": first,
                                  **{f"{d.replace('/', ' ')} flag at query": q for d, q in sorted(alerts.items())}},
                    details={"alerts": alerts, "expected_by_query": expect or {}, "attack_summary": attack.summary})
