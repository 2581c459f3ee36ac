"""MED-2: run a probing campaign, then ask whether the service left a forensic trail of it."""

from __future__ import annotations

from typing import Callable

from security_tests.attacks.client import Client
from security_tests.attacks.extraction import random_queries
from security_tests.contract import Evidence

REQUIRED = ("ts", "request_id", "client", "key_id", "features", "prediction", "status")


def probe_then_read_log(client: Client, read_log: Callable[[], tuple[list[dict], str]], api_key: str,
                        n: int = 500) -> Evidence:
    """``read_log`` returns the parsed records and the raw text, so the raw key can be searched for."""
    before, _ = read_log()
    statuses = [client.predict(payload).status for payload in random_queries(n, seed=11)]
    records, text = read_log()
    new = [r for r in records[len(before):] if r.get("type") != "alert"]
    answered = sum(status == 200 for status in statuses)
    complete = [r for r in new if all(field in r for field in REQUIRED)]
    with_features = [r for r in new if r.get("status") == 200 and r.get("features") and r.get("prediction") is not None]
    leaked = bool(api_key) and api_key in text
    trail = len(new) == n and len(complete) == n and len(with_features) == answered and not leaked
    record = (with_features or new or [None])[-1]
    return Evidence(
        attack_succeeded=not trail, queries=n,
        summary=(f"{len(new)} audit records for {n} requests ({answered} answered); "
                 f"{len(complete)} complete; raw API key in log: {leaked}"),
        samples=[{"label": "An audit log line", "request": None, "response": record}] if record else [],
        measurements={"answered": answered, "log_records": len(new), "complete_records": len(complete),
                      "answered_records_with_features_and_prediction": len(with_features)},
        details={"raw_key_in_log": leaked, "last_record": record})
