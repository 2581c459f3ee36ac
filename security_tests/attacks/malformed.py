"""MED-1: out-of-range and ill-typed inputs; each must get a 4xx that names the bad field."""

from __future__ import annotations

import json

from fraudpipe.data import LEGITIMATE_EXAMPLE
from security_tests.attacks.client import Client
from security_tests.contract import Evidence

VALID = LEGITIMATE_EXAMPLE


def _raw_amount(token: str) -> bytes:
    """The valid transaction with a non-standard JSON number (NaN, Infinity) as its amount."""
    return json.dumps({**VALID, "amount": "<amount>"}).replace('"<amount>"', token).encode()


CASES = [
    ("negative amount", dict(VALID, amount=-500), None, ["amount"]),
    ("transactions_24h 99999", dict(VALID, transactions_24h=99999), None, ["transactions_24h"]),
    ("NaN amount", None, _raw_amount("NaN"), ["amount"]),
    ("Infinity amount", None, _raw_amount("Infinity"), ["amount"]),
    ("string amount", dict(VALID, amount="120"), None, ["amount"]),
    ("boolean foreign_transaction", dict(VALID, foreign_transaction=True), None, ["foreign_transaction"]),
    ("hour 99", dict(VALID, hour_of_day=99), None, ["hour_of_day"]),
    ("extra field", dict(VALID, merchant_id="m-1"), None, ["merchant_id"]),
]


def send_malformed(client: Client) -> Evidence:
    results = []
    for name, payload, raw, bad_fields in CASES:
        answer = client.predict(payload, raw_body=raw)
        named = answer.body.get("fields", {}) if isinstance(answer.body, dict) else {}
        results.append({
            "case": name, "status": answer.status, "bad_fields": bad_fields,
            "fields_named": sorted(named), "names_each_bad_field": all(f in named for f in bad_fields),
            "response": answer.body,
        })
    return refusal_evidence(results, lambda r: 400 <= r["status"] < 500, "malformed inputs refused with 4xx",
                            all_422_naming_fields=all(r["status"] == 422 and r["names_each_bad_field"]
                                                      for r in results))


def refusal_evidence(results: list[dict], refused, what: str, **details) -> Evidence:
    """Cases that each had to be refused: the attack succeeds on any that was answered or crashed."""
    not_refused = [r["case"] for r in results if not refused(r)]
    crashed = [r["case"] for r in results if r["status"] >= 500]
    return Evidence(
        attack_succeeded=bool(not_refused), queries=len(results),
        summary=(f"{len(results) - len(not_refused)} of {len(results)} {what}; "
                 f"accepted or crashed: {', '.join(not_refused) or 'none'}"),
        measurements={"refused_4xx": len(results) - len(not_refused), "crashed_5xx": len(crashed)},
        details={"cases": results, "not_refused": not_refused, "crashed_5xx": crashed, **details})
