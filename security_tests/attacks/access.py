"""CRIT-1: can someone with no valid key get predictions?"""

from __future__ import annotations

from security_tests.attacks.client import Client, exchange
from security_tests.contract import Evidence


def unauthenticated_access(client: Client, payload: dict, valid_key: str | None, requests: int = 10) -> Evidence:
    """Cycle through the ways a caller without a key tries the door, ``requests`` times in all."""
    attempts = [
        ("no key", {}, ""),
        ("empty key", {"X-API-Key": ""}, ""),
        ("wrong key", {"X-API-Key": "not-a-real-key-0000"}, ""),
        ("key in query string", {}, f"?api_key={valid_key or 'x'}"),
    ]
    rows, sample = [], None
    for index in range(requests):
        name, headers, query = attempts[index % len(attempts)]
        answer = client.predict(payload, headers=headers, query=query)
        rows.append({"attempt": name, "status": answer.status, "answered": answer.ok})
        if sample is None or (answer.ok and not sample["response"]["status"] == 200):
            sample = exchange("A request without a valid key and its response", payload, answer, headers)
    answered = sum(row["answered"] for row in rows)
    statuses = sorted({row["status"] for row in rows})
    return Evidence(
        attack_succeeded=answered > 0,
        summary=f"{answered} of {requests} requests without a valid key were answered with a prediction "
                f"(statuses {statuses})",
        queries=requests, samples=[sample],
        measurements={"answered_with_prediction": answered},
        details={"statuses": statuses,
                 "by_attempt": {name: sorted({r["status"] for r in rows if r["attempt"] == name})
                                for name, *_ in attempts}})
