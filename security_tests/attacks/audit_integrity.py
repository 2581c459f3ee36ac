"""MED-2, the whole family: is every request in the audit trail, and is each record what really happened?

A trail with holes (refusals not logged), a forged source (the client address taken from a header the
caller writes), records that cannot be joined to the answer (a request id the caller never saw) or
that leak the key is worse than none: an investigator trusts it. Each request here is sent with
spoofed ``X-Forwarded-For`` and ``X-Real-IP`` headers, one of each status the service can give, and
every record is checked field by field against what was sent and answered.
"""

from __future__ import annotations

import json
from typing import Callable

from fraudpipe.data import FEATURE_NAMES
from security_tests.attacks.client import Answer, Client
from security_tests.contract import Evidence

SPOOFED = [("X-Forwarded-For", "203.0.113.9"), ("X-Real-IP", "203.0.113.10")]
GOOD = ({"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0},
        {"amount": 800.0, "hour_of_day": 2, "transactions_24h": 20, "foreign_transaction": 1},
        {"amount": 12.25, "hour_of_day": 9, "transactions_24h": 0, "foreign_transaction": 1})
MAX_FLOOD = 12


def _json(value) -> bytes:
    return json.dumps(value).encode()


def requests_for_every_status(key: str, max_body_bytes: int) -> list[tuple[str, str, str, list, bytes]]:
    """(expected status, method, path, headers, body) in an order that ends with the limiter's 429."""
    keyed = [("X-API-Key", key), *SPOOFED]
    ctype = ("Content-Type", "application/json")
    sent = [("200", "POST", "/predict", [ctype, *keyed], _json(row)) for row in GOOD]
    sent += [
        ("400", "POST", "/predict", [ctype, *keyed], b'{"amount": '),
        ("401", "POST", "/predict", [ctype, *SPOOFED], _json(GOOD[0])),
        ("401", "POST", "/predict", [ctype, ("X-API-Key", key + "x"), *SPOOFED], _json(GOOD[0])),
        ("404", "GET", "/no-such-route", keyed, b""),
        ("405", "GET", "/predict", keyed, b""),
        ("413", "POST", "/predict", [ctype, *keyed], _json({**GOOD[0], "pad": "x" * max_body_bytes})),
        ("415", "POST", "/predict", [("Content-Type", "text/plain"), *keyed], _json(GOOD[0])),
        ("422", "POST", "/predict", [ctype, *keyed], _json({**GOOD[0], "amount": -5})),
    ]
    return sent


def _transaction(body: bytes) -> dict | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and all(name in data for name in FEATURE_NAMES) else None


def _check_record(record: dict | None, sent: tuple, answer: Answer, peer: str | None, key: str,
                  auth_on: bool) -> list[str]:
    """``auth_on``: the service refused a wrong key, so a call it authenticated must carry a key id (a 429 may
    be decided before authentication, as the limiter is)."""
    _, method, path, headers, body = sent
    row = _transaction(body)
    if record is None:
        return ["no record"]
    problems = []
    expect = {"method": method, "path": path, "status": answer.status}
    problems += [f"{name} {record.get(name)!r} != {value!r}" for name, value in expect.items() if record.get(name) != value]
    if peer is not None and record.get("client") != peer:
        problems.append(f"client {record.get('client')!r} is not the peer address {peer!r}")
    if not str(record.get("ts", "")).endswith("+00:00"):
        problems.append(f"ts {record.get('ts')!r} is not UTC")
    if answer.status >= 400 and not record.get("reason"):
        problems.append("a refusal without its reason")
    if not isinstance(record.get("latency_ms"), (int, float)) or record["latency_ms"] < 0:
        problems.append(f"latency_ms {record.get('latency_ms')!r}")
    keyed = ("X-API-Key", key) in headers
    if auth_on and keyed and answer.status not in (401, 404, 405, 429) and not record.get("key_id"):
        problems.append("no key_id for an authenticated call")
    if record.get("key_id") == key:
        problems.append("key_id is the raw key")
    if answer.ok and row is not None:
        if record.get("features") != [float(row[name]) for name in FEATURE_NAMES]:
            problems.append(f"features {record.get('features')!r} differ from what was sent")
        if record.get("prediction") != answer.label:
            problems.append(f"prediction {record.get('prediction')!r} differs from the answer {answer.label}")
        probability = record.get("probability")
        if not isinstance(probability, (int, float)) or not 0 <= probability <= 1 or \
                (probability != 0.5 and (probability > 0.5) != bool(answer.label)):
            problems.append(f"probability {probability!r} does not fit the answer {answer.label}")
    return problems


def audit_every_status(client: Client, read_log: Callable[[], tuple[list[dict], str]], key: str,
                       max_body_bytes: int) -> Evidence:
    """Send one request of each status (and flood to the limiter's 429), then check the log record by record."""
    before, _ = read_log()
    sent = requests_for_every_status(key, max_body_bytes)
    for _ in range(MAX_FLOOD):
        sent.append(("200 or 429", "POST", "/predict", [("Content-Type", "application/json"), ("X-API-Key", key),
                                                         *SPOOFED], _json(GOOD[0])))
    answers = []
    for item in sent:
        answers.append(client.request(item[1], item[2], item[3], item[4]))
        if answers[-1].status == 429:
            break
    sent = sent[:len(answers)]
    records, text = read_log()
    new = [r for r in records[len(before):] if r.get("type") != "alert"]
    by_id: dict[str, list[dict]] = {}
    for record in new:
        by_id.setdefault(str(record.get("request_id")), []).append(record)
    peer = getattr(client, "remote_addr", None)
    auth_on = any(a.status == 401 for a in answers)
    problems: dict[str, list[str]] = {}
    for index, (item, answer) in enumerate(zip(sent, answers)):
        request_id = answer.headers.get("X-Request-ID")
        matches = by_id.get(str(request_id), [])
        found = _check_record(matches[0] if matches else None, item, answer, peer, key, auth_on)
        if len(matches) > 1:
            found.append(f"{len(matches)} records for one request")
        if found:
            problems[f"#{index} {item[1]} {item[2]} -> {answer.status}"] = found
    if len(new) != len(sent):
        problems["record count"] = [f"{len(new)} records for {len(sent)} requests"]
    if key in text:
        problems["raw key"] = ["the raw API key appears in the log"]
    statuses = sorted({a.status for a in answers})
    first = next(iter(problems), None)
    return Evidence(
        attack_succeeded=bool(problems), queries=len(sent),
        summary=(f"{len(new)} audit records for {len(sent)} requests (statuses {statuses}); "
                 + (f"{len(problems)} with problems, first: {first}: {problems[first][0]}" if problems else
                    "every record matches what was sent and answered, client is the peer address")),
        measurements={"requests": len(sent), "log_records": len(new), "requests_with_problems": len(problems)},
        details={"statuses_sent": statuses, "problems": problems, "sample_record": new[0] if new else None})
