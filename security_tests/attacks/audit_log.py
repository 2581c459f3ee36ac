"""MED-2, the whole family: is every request in the audit trail, and is each record what really happened?

A trail with holes (refusals not logged), a forged source (the client address taken from a header the
caller writes), records that cannot be joined to the answer (a request id the caller never saw) or that
leak the key is worse than none: an investigator trusts it. Two attacks: a probing campaign of in-range
queries, after which the trail must hold one complete record each; and one request of each status the
service can give (sent with spoofed ``X-Forwarded-For`` and ``X-Real-IP``), each record checked field by
field against what was sent and answered.

The log is read through ``read_log() -> (records, raw text)``; requests, fields and examples come from the
target profile.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from security_tests.attacks.client import Answer, Client
from security_tests.budget import Need, spends
from security_tests.contract import Evidence
from security_tests.targets.profile import AuditLog, TargetProfile, reach

ReadLog = Callable[[], tuple[list[dict], str]]
SPOOFED = [("X-Forwarded-For", "203.0.113.9"), ("X-Real-IP", "203.0.113.10")]
REQUIRED = ("ts", "request_id", "client", "key_id", "features", "prediction", "status")
MAX_FLOOD = 12

Sent = tuple[str, str, str, list, bytes]  # expected status, method, path, headers, body


def _json(value) -> bytes:
    return json.dumps(value).encode()


def in_range_queries(profile: TargetProfile, n: int, seed: int = 11) -> list[dict]:
    """Uniform over each field's typical range: what a prober who knows the domain sends."""
    rng = np.random.default_rng(seed)
    columns = [rng.uniform(*f.typical_range, n) if f.type == "float"
               else rng.integers(int(f.typical_range[0]), int(f.typical_range[1]) + 1, n) for f in profile.fields]
    return [profile.row(values) for values in zip(*columns)]


# An unknown field whose name holds U+2028: a log writer that keeps it raw (valid JSON) and a reader that
# splits lines on it (``str.splitlines``) lose the refusal's record between them.
LINE_SEPARATOR_FIELD = "note\u2028"


def _credential(profile: TargetProfile, key: str) -> tuple[str, str]:
    return next(iter(profile.auth_headers(key).items()))


def requests_for_every_status(profile: TargetProfile, key: str, max_body_bytes: int) -> list[Sent]:
    """One request per status the service can give, in an order that leaves the limiter's 429 for last."""
    credential = _credential(profile, key)
    keyed, ctype, predict = [credential, *SPOOFED], ("Content-Type", "application/json"), profile.predict_path
    good = (profile.negative_example, profile.positive_example, *in_range_queries(profile, 1, seed=3))
    first = next((f for f in profile.fields if f.type != "bool"), profile.fields[0])
    out_of_range = {**good[0], first.name: first.cast(first.min - max(first.meaningful_step, 1.0))}
    sent = [("200", "POST", predict, [ctype, *keyed], _json(row)) for row in good]
    sent += [
        ("400", "POST", predict, [ctype, *keyed], f'{{"{first.name}": '.encode()),
        ("401", "POST", predict, [ctype, *SPOOFED], _json(good[0])),
        ("401", "POST", predict, [ctype, (credential[0], credential[1] + "x"), *SPOOFED], _json(good[0])),
        ("404", "GET", "/no-such-route", keyed, b""),
        ("405", "GET", predict, keyed, b""),
        ("413", "POST", predict, [ctype, *keyed], _json({**good[0], "pad": "x" * max_body_bytes})),
        ("415", "POST", predict, [("Content-Type", "text/plain"), *keyed], _json(good[0])),
        ("422", "POST", predict, [ctype, *keyed], _json({**out_of_range, LINE_SEPARATOR_FIELD: 1})),
    ]
    return sent


def _row(body: bytes, profile: TargetProfile) -> dict | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and all(name in data for name in profile.field_names) else None


def _same_label(recorded, answer: Answer) -> bool:
    """The record may hold the answer's label itself, or 1/0 for the positive/negative class."""
    if recorded == answer.label:
        return True
    return isinstance(recorded, int) and not isinstance(recorded, bool) and recorded == int(bool(answer.positive))


def _check_record(record: dict | None, sent: Sent, answer: Answer, peer: str | None, key: str, auth_on: bool,
                  profile: TargetProfile) -> list[str]:
    """``auth_on``: the service refused a wrong key, so a call it authenticated must carry a key id (a 429 may
    be decided before authentication, as the limiter is)."""
    _, method, path, headers, body = sent
    row = _row(body, profile)
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
    keyed = _credential(profile, key) in headers
    if auth_on and keyed and answer.status not in (401, 404, 405, 429) and not record.get("key_id"):
        problems.append("no key_id for an authenticated call")
    if record.get("key_id") == key:
        problems.append("key_id is the raw key")
    if answer.ok and row is not None:
        if record.get("features") != [float(row[name]) for name in profile.field_names]:
            problems.append(f"features {record.get('features')!r} differ from what was sent")
        if not _same_label(record.get("prediction"), answer):
            problems.append(f"prediction {record.get('prediction')!r} differs from the answer {answer.label}")
        probability = record.get("probability")
        if not isinstance(probability, (int, float)) or not 0 <= probability <= 1 or \
                (probability != 0.5 and (probability > 0.5) != bool(answer.positive)):
            problems.append(f"probability {probability!r} does not fit the answer {answer.label}")
    return problems


def _new_records(read_log: ReadLog, before: int) -> tuple[list[dict], str]:
    records, text = read_log()
    return [r for r in records[before:] if r.get("type") != "alert"], text


def probe_then_read_log(client: Client, read_log: ReadLog, profile: TargetProfile, api_key: str,
                        n: int = 500) -> Evidence:
    """A probing campaign of ``n`` in-range queries; the trail must hold one complete record per query,
    features and prediction for every answer, and never the raw key."""
    before, _ = read_log()
    statuses = [client.predict(payload).status for payload in in_range_queries(profile, n)]
    new, text = _new_records(read_log, len(before))
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


def audit_every_status(client: Client, read_log: ReadLog, profile: TargetProfile, key: str,
                       max_body_bytes: int) -> Evidence:
    """Send one request of each status (and flood to the limiter's 429), then check the log record by record."""
    before, _ = read_log()
    sent = requests_for_every_status(profile, key, max_body_bytes)
    flood = ("200 or 429", "POST", profile.predict_path,
             [("Content-Type", "application/json"), _credential(profile, key), *SPOOFED], _json(profile.negative_example))
    sent += [flood] * MAX_FLOOD
    answers = []
    for item in sent:
        answers.append(client.request(item[1], item[2], item[3], item[4]))
        if answers[-1].status == 429:
            break
    sent = sent[:len(answers)]
    new, text = _new_records(read_log, len(before))
    by_id: dict[str, list[dict]] = {}
    for record in new:
        by_id.setdefault(str(record.get("request_id")), []).append(record)
    peer = getattr(client, "remote_addr", None)
    auth_on = any(a.status == 401 for a in answers)
    problems: dict[str, list[str]] = {}
    for index, (item, answer) in enumerate(zip(sent, answers)):
        matches = by_id.get(str(answer.headers.get("X-Request-ID")), [])
        found = _check_record(matches[0] if matches else None, item, answer, peer, key, auth_on, profile)
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


MAX_LOG_BYTES = 64 << 20
"""The most of a target's log the assessor reads: the tail it appended during the campaign, and for the raw-key
search the whole file up to this size."""
OVERSIZED = 1 << 20


def log_in_operation(client: Client, payload: dict, log: Path, read_log: ReadLog,
                     disk_full: Callable[[], AbstractContextManager]) -> Evidence:
    """What an ordinary week does to the file under a running service: logrotate renames it and creates a new
    one, a clean-up job deletes it, the disk fills up. Each answer given must be recorded at the configured
    path, where the operator's shipper reads it (an answer nobody can find there is a hole an investigator
    does not know about), and the file must be the service's alone: it holds every client's inputs and key
    ids."""
    answers, lost = {}, []

    def send(step: str) -> None:
        answer = client.predict(payload)
        answers[step] = answer.status
        recorded = {record.get("request_id") for record in read_log()[0] if isinstance(record, dict)}
        if answer.ok and answer.headers.get("X-Request-ID") not in recorded:
            lost.append(step)

    send("as deployed")
    mode = log.stat().st_mode & 0o777 if log.is_file() else None
    if log.is_file():  # logrotate's default: rename, then create an empty file in its place
        log.rename(log.with_name(log.name + ".1"))
        log.touch(mode=0o600)
    send("after a rotation")
    if log.is_file():
        log.unlink()
    send("after a deletion")
    with disk_full():
        send("with the disk full")
    readable_by_others = mode is not None and bool(mode & 0o077)
    return Evidence(
        attack_succeeded=bool(lost) or readable_by_others, queries=len(answers),
        summary=(f"{len(answers) - len(lost)} of {len(answers)} requests answered and recorded at the log's path or "
                 f"refused; answered without a record there: {', '.join(lost) or 'none'}; log file mode "
                 f"{'none (no log)' if mode is None else oct(mode)}"),
        measurements={"answered_unrecorded": len(lost), "requests": len(answers)},
        details={"statuses": answers, "answered_unrecorded": lost,
                 "log_mode": oct(mode) if mode is not None else None, "readable_by_others": readable_by_others})


def log_size(log: AuditLog) -> int:
    try:
        return log.log.stat().st_size
    except OSError:
        return 0


def _appended(log: AuditLog, since: int) -> tuple[list, str]:
    """The records appended after byte ``since`` (a shrunk file was rotated: read it whole), a line that is
    not a JSON object kept as None; and the whole text for the raw-key search."""
    try:
        with open(log.log, "rb") as handle:
            data = handle.read(MAX_LOG_BYTES)
    except OSError:
        return [], ""
    text = data.decode("utf-8", "replace")
    new = data[since:] if len(data) >= since else data
    records = []
    for line in new.decode("utf-8", "replace").split("\n"):  # a record may hold U+2028: only \n ends a line
        try:
            record = json.loads(line) if line.strip() else None
        except (ValueError, RecursionError):
            record = None
        if line.strip():
            records.append(record if isinstance(record, dict) else None)
    return records, text


def campaign(profile: TargetProfile, key: str) -> list[tuple[bool, str, str, list, bytes]]:
    """``(keyed, method, path, headers, body)``: one request for each status a service can be made to give
    without spending its limit (200, 401 twice, 404, 405, 413, 415, 422), each with a forged client address
    (the 429 comes from a flood on a window of its own, ``target_audit_trail``)."""
    credential = _credential(profile, key)
    ctype, good = ("Content-Type", "application/json"), profile.negative_example
    first = next((f for f in profile.fields if f.type != "bool"), profile.fields[0])
    out_of_range = {**good, first.name: first.cast(first.min - max(first.meaningful_step, 1.0))}
    body, predict, method = profile.encode(good), profile.predict_path, profile.method
    return [(True, method, predict, [ctype, credential, *SPOOFED], body),
            (False, method, predict, [ctype, *SPOOFED], body),
            (False, method, predict, [ctype, (credential[0], credential[1] + "x"), *SPOOFED], body),
            (True, "GET", "/no-such-route", [credential, *SPOOFED], b""),
            (True, "DELETE" if method != "DELETE" else "GET", predict, [credential, *SPOOFED], b""),
            (True, method, predict, [ctype, credential, *SPOOFED], profile.encode({**good, "pad": "x" * OVERSIZED})),
            (True, method, predict, [("Content-Type", "text/plain"), credential, *SPOOFED], body),
            (True, method, predict, [ctype, credential, *SPOOFED],
             profile.encode({**out_of_range, LINE_SEPARATOR_FIELD: 1}))]


def _trail_need(profile: TargetProfile) -> Need:
    if profile.audit is None:
        return Need(why="nothing: the profile names no [audit] log")
    if profile.rate_limit is None:
        return Need("", 6, 6, keyless=2, why="6 keyed requests and 2 without a key, one of each status, then the log")
    return Need("", 6, 6, fresh=1, fresh_queries=profile.rate_limit + 1, keyless=2,
                why=f"6 keyed requests and 2 without a key, one of each status, and {profile.rate_limit + 1} on an "
                    "untouched window for a 429, then the log")


@spends(_trail_need)
def target_audit_trail(keyed: Client, keyless: Client, profile: TargetProfile, key: str, secrets: list[str],
                       addresses: set[str], settle: float = 0.3, flood: Client | None = None) -> Evidence:
    """The target's own log (``[audit]``) after one request of each status: each must leave exactly one record
    with the status answered and, when the profile names where the client address is, the real source address
    (never the forged ``X-Forwarded-For``); no raw API key anywhere in the log. With ``client`` given the
    records are told apart from other traffic by the addresses this test sent from (``addresses``). With
    ``flood`` (a client on an untouched window) the promised limit and one more are sent, so the refusal
    the limit gives (429) must be logged too."""
    log = profile.audit
    before = log_size(log)
    answered = []
    for is_keyed, method, path, headers, body in campaign(profile, key):
        answered.append((keyed if is_keyed else keyless).request(method, path, headers, body).status)
    if flood is not None and profile.rate_limit is not None:
        answered += [flood.predict(profile.negative_example).status for _ in range(profile.rate_limit + 1)]
    time.sleep(settle)
    records, text = _appended(log, before)
    problems: list[str] = []
    unreadable = records.count(None)
    records = [r for r in records if r is not None]
    if unreadable:
        problems.append(f"{unreadable} appended lines are not JSON objects")
    forged = {value for _, value in SPOOFED}
    if log.client is not None:
        clients = [reach(r, log.client) for r in records]
        if forged_records := sum(c in forged for c in clients):
            problems.append(f"{forged_records} records name the forged X-Forwarded-For/X-Real-IP as the client")
        if addresses:
            records = [r for r, c in zip(records, clients) if c in addresses]
    logged = Counter(reach(r, log.status) for r in records)
    sent = Counter(answered)
    if logged != sent:
        missing, extra = sent - logged, logged - sent
        problems.append(f"statuses answered {dict(sorted(sent.items()))} but logged {dict(logged)}"
                        + (f": missing {dict(missing)}" if missing else "")
                        + (f", extra {dict(extra)}" if extra else ""))
    leaked = [f"key #{i}" for i, secret in enumerate(secrets) if secret and secret in text]
    if leaked:
        problems.append(f"the raw API key ({', '.join(leaked)}) appears in the log")
    return Evidence(
        attack_succeeded=bool(problems), queries=len(answered),
        summary=(f"{len(records)} records in {log.log.name} for {len(answered)} requests answered "
                 f"{sorted(set(answered))}: " + ("; ".join(problems) if problems else
                                                  "one record each with the status answered"
                                                  + (" and the real client address" if log.client else "")
                                                  + ", no raw key in the log")),
        measurements={"requests": len(answered), "log_records": len(records), "problems": len(problems)},
        details={"statuses_answered": answered, "problems": problems, "sample_record": records[0] if records else None})
