"""CRIT-1, the whole family: every way a caller without the key might still reach the model.

One narrow probe (no key, a wrong key) misses the regressions an honest refactor makes: a key compared
after ``strip()`` or ``lower()``, a prefix match, the stored hash accepted as the key, a fallback to a
query parameter, a cookie or a bearer token, an empty key list that lets everyone in, a route alias
the check does not cover. Each attempt here is one of those; only the exact key in the X-API-Key header
(whose name is case-insensitive, as every HTTP header's) may get a prediction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from urllib.parse import quote

from security_tests.attacks.client import NOT_SENT, Client, exchange
from security_tests.contract import Evidence

Attempt = tuple[str, str, str, list[tuple[str, str]], bytes]  # name, method, path, headers, body
PATH_VARIANTS = ("/predict/", "//predict", "/PREDICT", "/Predict", "/%70redict", "/predict%2F", "/./predict",
                 "/predict;", "/predict/.", "/api/predict", "/v1/predict")


def near_keys(key: str) -> dict[str, str]:
    """Keys an attacker can derive from a leaked fragment, a log line or the keys file, but not the key."""
    changed = key[:-1] + ("A" if key[-1] != "A" else "B")
    return {
        "prefix": key[:-1], "half": key[: len(key) // 2], "suffix": key + "x", "one char changed": changed,
        "case changed": key.swapcase(), "leading space": " " + key, "trailing space": key + " ",
        "trailing tab": key + "\t", "key twice": key + key, "key twice, comma": f"{key}, {key}",
        "empty": "", "sha256 hex": hashlib.sha256(key.encode()).hexdigest(),
        "sha256 HEX": hashlib.sha256(key.encode()).hexdigest().upper(),
    }


def _json(payload: dict, **extra) -> bytes:
    return json.dumps({**payload, **extra}).encode()


def attempts(key: str, payload: dict, routes: dict[str, set[str]], stored_hashes: Iterable[str] = ()) -> list[Attempt]:
    """Every attempt that must be refused. ``routes`` is the app's own route map (path -> methods)."""
    body, ctype = _json(payload), ("Content-Type", "application/json")
    tried: list[Attempt] = []
    for path, methods in sorted(routes.items()):
        for method in sorted(methods | {"HEAD", "OPTIONS"}):
            tried.append((f"no key: {method} {path}", method, path, [ctype], body))
    for path in PATH_VARIANTS:
        tried.append((f"no key: POST {path}", "POST", path, [ctype], body))
        tried.append((f"stored hash: POST {path}", "POST", path,
                      [ctype, ("X-API-Key", hashlib.sha256(key.encode()).hexdigest())], body))
    for name, near in near_keys(key).items():
        tried.append((f"near key: {name}", "POST", "/predict", [ctype, ("X-API-Key", near)], body))
    for index, stored in enumerate(stored_hashes):
        tried.append((f"keys-file hash #{index}", "POST", "/predict", [ctype, ("X-API-Key", stored)], body))
    smuggled = {
        "query ?api_key=": ("/predict?api_key=" + quote(key), [ctype], body),
        "query ?X-API-Key=": ("/predict?X-API-Key=" + quote(key), [ctype], body),
        "query ?key=": ("/predict?key=" + quote(key), [ctype], body),
        "JSON body api_key": ("/predict", [ctype], _json(payload, api_key=key)),
        "JSON body X-API-Key": ("/predict", [ctype], _json(payload, **{"X-API-Key": key})),
        "cookie api_key": ("/predict", [ctype, ("Cookie", f"api_key={key}")], body),
        "cookie X-API-Key": ("/predict", [ctype, ("Cookie", f"X-API-Key={key}")], body),
        "Authorization: Bearer": ("/predict", [ctype, ("Authorization", f"Bearer {key}")], body),
        "Authorization: raw": ("/predict", [ctype, ("Authorization", key)], body),
        "Authorization: ApiKey": ("/predict", [ctype, ("Authorization", f"ApiKey {key}")], body),
        "X-Api-Token header": ("/predict", [ctype, ("X-Api-Token", key)], body),
        "Api-Key header": ("/predict", [ctype, ("Api-Key", key)], body),
        "X-API-Key twice: wrong then key": ("/predict", [ctype, ("X-API-Key", "wrong"), ("X-API-Key", key)], body),
        "X-API-Key twice: key then wrong": ("/predict", [ctype, ("X-API-Key", key), ("X-API-Key", "wrong")], body),
        "X-API-Key twice: empty then key": ("/predict", [ctype, ("X-API-Key", ""), ("X-API-Key", key)], body),
    }
    for name, (path, headers, data) in smuggled.items():
        tried.append((f"smuggled: {name}", "POST", path, headers, data))
    return tried


def accepted_forms(key: str, payload: dict) -> list[Attempt]:
    """What must work: the key in X-API-Key, with the header name in any case."""
    body, ctype = _json(payload), ("Content-Type", "application/json")
    return [(f"valid key, header {name}", "POST", "/predict", [ctype, (name, key)], body)
            for name in ("X-API-Key", "x-api-key", "X-Api-Key")]


def bypass_family(client: Client, key: str, payload: dict, routes: dict[str, set[str]],
                  stored_hashes: Iterable[str] = ()) -> Evidence:
    """Run every attempt; the attack succeeds if any request without the exact key got a prediction."""
    tried = attempts(key, payload, routes, stored_hashes)
    if getattr(client, "wire_strips_whitespace", False):  # over HTTP " key" and "key " are the key itself
        tried = [t for t in tried if not any(v != v.strip() and v.strip() == key for _, v in t[3])]
    answered, not_refused, statuses, samples = [], [], {}, []
    for name, method, path, headers, body in tried:
        answer = client.request(method, path, headers, body)
        statuses[name] = answer.status
        if answer.ok:
            answered.append(name)
            if len(samples) < 3:
                shown = {k: v.replace(key, "<the valid key>") for k, v in headers}
                samples.append(exchange(f"{name}: answered without the key", body.decode().replace(key, "<the valid key>"),
                                        answer, shown))
        if method == "POST" and path.split("?")[0] == "/predict" and answer.status not in (401, NOT_SENT):
            not_refused.append(name)
    valid = {name: client.request(method, path, headers, body).status
             for name, method, path, headers, body in accepted_forms(key, payload)}
    return Evidence(
        attack_succeeded=bool(answered), queries=len(tried) + len(valid), samples=samples,
        summary=(f"{len(answered)} of {len(tried)} requests without the exact key in X-API-Key got a "
                 f"prediction" + (f" (first: {', '.join(answered[:4])})" if answered else "")
                 + f"; the valid key answered {sorted(set(valid.values()))}"),
        measurements={"attempts": len(tried), "answered_without_the_key": len(answered)},
        details={"answered_without_the_key": answered, "predict_attempts_not_refused_401": not_refused,
                 "status_by_attempt": statuses, "valid_key_statuses": valid})


def no_key_configured(client: Client, key: str, payload: dict) -> Evidence:
    """With no key configured at all the service must refuse everyone (fail closed), not let everyone in."""
    tried = {"no key": [], "empty key": [("X-API-Key", "")], "any key": [("X-API-Key", "anything")],
             "a once-valid key": [("X-API-Key", key)]}
    ctype = ("Content-Type", "application/json")
    statuses = {name: client.request("POST", "/predict", [ctype, *headers], _json(payload))
                for name, headers in tried.items()}
    answered = [name for name, answer in statuses.items() if answer.ok]
    return Evidence(
        attack_succeeded=bool(answered), queries=len(tried),
        summary=f"with no API key configured, {len(answered)} of {len(tried)} callers got a prediction "
                f"({', '.join(answered) or 'none'})",
        measurements={"answered": len(answered)},
        details={"statuses": {name: answer.status for name, answer in statuses.items()}, "answered": answered})


def app_routes(app) -> dict[str, set[str]]:
    """The routes and methods the app really serves; HEAD and OPTIONS are Werkzeug's automatic extras."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        routes.setdefault(rule.rule, set()).update(set(rule.methods or ()) - {"HEAD", "OPTIONS"})
    return routes


def documented_routes(document: dict) -> dict[str, set[str]]:
    return {path: {method.upper() for method in operations} for path, operations in document["paths"].items()}


def undocumented(app, document: dict) -> dict:
    """An undocumented route is attack surface nobody reviews; a documented one that is gone is a stale contract."""
    served, documented = app_routes(app), documented_routes(document)
    extra = {f"{m} {p}" for p, ms in served.items() for m in ms} - {f"{m} {p}" for p, ms in documented.items() for m in ms}
    missing = {f"{m} {p}" for p, ms in documented.items() for m in ms} - {f"{m} {p}" for p, ms in served.items() for m in ms}
    return {"served": {p: sorted(m) for p, m in served.items()}, "undocumented": sorted(extra),
            "documented_but_not_served": sorted(missing)}
