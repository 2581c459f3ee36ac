"""CRIT-1, the whole family: every way a caller without the key might still reach the model.

One narrow probe (no key, a wrong key) misses the regressions an honest refactor makes: a key compared
after ``strip()`` or ``lower()``, a prefix match, the stored hash accepted as the key, a fallback to a
query parameter, a cookie or another header, an empty key list that lets everyone in, a route alias the
check does not cover. Each attempt here is one of those; only the exact key, in the profile's header with
the profile's scheme (the header name in any case, as every HTTP header's), may get an answer. Everything
is read from the target profile, so the same attempts run in-process and against a live target.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from urllib.parse import quote

from security_tests.attacks.client import NOT_SENT, Client, exchange, require_answer
from security_tests.budget import Need, spends
from security_tests.contract import Evidence, NotAssessed
from security_tests.targets.profile import TargetProfile

Attempt = tuple[str, str, str, list[tuple[str, str]], bytes]  # name, method, path, headers, body
PATH_SPELLINGS = ("{p}/", "/{p}", "{P}", "{Cap}", "{enc}", "{p}%2F", "/.{p}", "{p};", "{p}/.", "/api{p}", "/v1{p}")
PLACEHOLDER = "<the valid key>"


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


def _credential(profile: TargetProfile, key: str) -> tuple[str, str]:
    return profile.auth_header, f"{profile.auth_scheme} {key}" if profile.auth_scheme else key


def _spellings(path: str) -> list[str]:
    bare = path.lstrip("/")
    encoded = f"/%{ord(bare[0]):02x}{bare[1:]}" if bare else "/"
    return [s.format(p=path, P=path.upper(), Cap="/" + bare[:1].upper() + bare[1:], enc=encoded)
            for s in PATH_SPELLINGS]


def _json(profile: TargetProfile, payload: dict, **extra) -> bytes:
    return profile.encode({**payload, **extra})


def attempts(profile: TargetProfile, key: str, routes: dict[str, set[str]],
             stored_hashes: Iterable[str] = ()) -> list[Attempt]:
    """Every attempt that must be refused; ``routes`` is what the target serves or documents (path -> methods)."""
    predict, payload = profile.predict_path, profile.positive_example
    body, ctype = _json(profile, payload), ("Content-Type", "application/json")
    digest = hashlib.sha256(key.encode()).hexdigest()
    credential = _credential(profile, key)
    tried: list[Attempt] = []
    for path, methods in sorted(routes.items()):
        for method in sorted(methods | {"HEAD", "OPTIONS"}):
            tried.append((f"no key: {method} {path}", method, path, [ctype], body))
    for path in _spellings(predict):
        tried.append((f"no key: POST {path}", "POST", path, [ctype], body))
        tried.append((f"stored hash: POST {path}", "POST", path, [ctype, _credential(profile, digest)], body))
    for name, near in near_keys(key).items():
        tried.append((f"near key: {name}", "POST", predict, [ctype, _credential(profile, near)], body))
    if profile.auth_scheme:
        tried.append(("the scheme alone", "POST", predict, [ctype, (profile.auth_header, profile.auth_scheme)], body))
    for index, stored in enumerate(stored_hashes):
        tried.append((f"keys-file hash #{index}", "POST", predict, [ctype, _credential(profile, stored)], body))
    name = profile.auth_header
    smuggled = {
        "query ?api_key=": (f"{predict}?api_key={quote(key)}", [ctype], body),
        f"query ?{name}=": (f"{predict}?{quote(name)}={quote(key)}", [ctype], body),
        "query ?key=": (f"{predict}?key={quote(key)}", [ctype], body),
        "query ?token=": (f"{predict}?token={quote(key)}", [ctype], body),
        "query ?access_token=": (f"{predict}?access_token={quote(key)}", [ctype], body),
        "JSON body api_key": (predict, [ctype], _json(profile, payload, api_key=key)),
        f"JSON body {name}": (predict, [ctype], _json(profile, payload, **{name: key})),
        "JSON body token": (predict, [ctype], _json(profile, payload, token=key)),
        "cookie api_key": (predict, [ctype, ("Cookie", f"api_key={key}")], body),
        f"cookie {name}": (predict, [ctype, ("Cookie", f"{name}={key}")], body),
        "cookie token": (predict, [ctype, ("Cookie", f"token={key}")], body),
        "Authorization: Bearer": (predict, [ctype, ("Authorization", f"Bearer {key}")], body),
        "Authorization: raw": (predict, [ctype, ("Authorization", key)], body),
        "Authorization: ApiKey": (predict, [ctype, ("Authorization", f"ApiKey {key}")], body),
        "Authorization: Basic": (predict, [ctype, ("Authorization", f"Basic {key}")], body),
        "X-API-Key header": (predict, [ctype, ("X-API-Key", key)], body),
        "X-Api-Token header": (predict, [ctype, ("X-Api-Token", key)], body),
        "Api-Key header": (predict, [ctype, ("Api-Key", key)], body),
        f"{name} twice: wrong then key": (predict, [ctype, (name, "wrong"), credential], body),
        f"{name} twice: key then wrong": (predict, [ctype, credential, (name, "wrong")], body),
        f"{name} twice: empty then key": (predict, [ctype, (name, ""), credential], body),
    }
    for label, (path, headers, data) in smuggled.items():
        if not _is_valid_form(profile, key, path, headers):
            tried.append((f"smuggled: {label}", "POST", path, headers, data))
    return tried


def _is_valid_form(profile: TargetProfile, key: str, path: str, headers: list[tuple[str, str]]) -> bool:
    """A smuggling attempt that is the profile's own way of sending the key is not smuggling."""
    credential = _credential(profile, key)
    carried = [(n.lower(), v) for n, v in headers if n.lower() == credential[0].lower()]
    return path == profile.predict_path and carried == [(credential[0].lower(), credential[1])]


def accepted_forms(profile: TargetProfile, key: str) -> list[Attempt]:
    """What must work: the key in the profile's header, with the header name in any case."""
    body, ctype = _json(profile, profile.positive_example), ("Content-Type", "application/json")
    header, value = _credential(profile, key)
    return [(f"valid key, header {name}", "POST", profile.predict_path, [ctype, (name, value)], body)
            for name in dict.fromkeys((header, header.lower(), header.title()))]


def routes_of(client: Client, profile: TargetProfile) -> dict[str, set[str]]:
    """What the target serves: the app's own route map in-process, else its OpenAPI document, else the
    profile's paths."""
    app = getattr(client, "app", None)
    if app is not None:
        return app_routes(app)
    if profile.openapi_path:
        answer = client.get(profile.openapi_path)
        if answer.status == 200 and isinstance(answer.body, dict) and isinstance(answer.body.get("paths"), dict):
            return documented_routes(answer.body)
    return {profile.predict_path: {"POST"}, **({profile.health_path: {"GET"}} if profile.health_path else {})}


def _bypass_need(profile: TargetProfile) -> Need:
    key = "k" * 24
    routes = {profile.predict_path: {"POST"}, "/health": {"GET"}, "/openapi.json": {"GET"}}
    tried = len(attempts(profile, key, routes)) + 10  # a target may document a few more routes
    return Need("", 4, 4, keyless=tried, why="the valid key in each accepted form; every attempt without it")


@spends(_bypass_need)
def bypass_family(keyless: Client, keyed: Client, profile: TargetProfile, key: str,
                  routes: dict[str, set[str]], stored_hashes: Iterable[str] = ()) -> Evidence:
    """Run every attempt without the key from ``keyless``, then the accepted forms from ``keyed``; the attack
    succeeds if any request without the exact key got an answer."""
    tried = attempts(profile, key, routes, stored_hashes)
    if getattr(keyless, "wire_strips_whitespace", False):  # over HTTP " key" and "key " are the key itself
        value = _credential(profile, key)[1]
        tried = [t for t in tried if not any(v != v.strip() and v.strip() in (key, value) for _, v in t[3])]
    answered, not_refused, limited, statuses, samples = [], [], [], {}, []
    for name, method, path, headers, body in tried:
        answer = keyless.request(method, path, headers, body)
        statuses[name] = answer.status
        if answer.ok:
            answered.append(name)
            if len(samples) < 3:
                shown = {k: v.replace(key, PLACEHOLDER) for k, v in headers}
                samples.append(exchange(f"{name}: answered without the key",
                                        body.decode().replace(key, PLACEHOLDER), answer, shown))
        elif answer.status == 429:
            limited.append(name)
        if method == "POST" and path.split("?")[0] == profile.predict_path and answer.status not in (401, NOT_SENT):
            not_refused.append(name)
    valid = {name: keyed.request(method, path, headers, body).status
             for name, method, path, headers, body in accepted_forms(profile, key)}
    if limited and not answered:
        raise NotAssessed(f"not assessed: {len(limited)} of {len(tried)} attempts without the key were refused "
                          "for volume (429), not by the auth check")
    return Evidence(
        attack_succeeded=bool(answered), queries=len(tried) + len(valid), samples=samples,
        summary=(f"{len(answered)} of {len(tried)} requests without the exact key in {profile.auth_header} got an "
                 f"answer" + (f" (first: {', '.join(answered[:4])})" if answered else "")
                 + f"; the valid key answered {sorted(set(valid.values()))}"),
        measurements={"attempts": len(tried), "answered_without_the_key": len(answered)},
        details={"answered_without_the_key": answered, "predict_attempts_not_refused_401": not_refused,
                 "status_by_attempt": statuses, "valid_key_statuses": valid, "auth_header": profile.auth_header,
                 "auth_scheme": profile.auth_scheme})


def _door_need(profile: TargetProfile) -> Need:
    return Need("", 1, 1, keyless=5 + len(near_keys("k" * 24)),
                why="one request with the key, the rest without")


@spends(_door_need)
def unauthenticated_access(keyless: Client, keyed: Client, profile: TargetProfile, valid_key: str | None) -> Evidence:
    """The front door as a casual caller tries it: no credential, an empty one, a wrong one, one in the query
    string, the scheme alone, and keys one edit from the valid key. ``keyed`` holds the valid key
    (precondition: the target answers it)."""
    if valid_key:
        require_answer(keyed.predict(profile.negative_example), "the negative example with the key given")
    attempts_ = [("no credential", {}, ""), ("empty credential", {profile.auth_header: ""}, ""),
                 ("wrong key", profile.auth_headers("not-a-real-key-0000"), ""),
                 ("wrong key in the query string", {}, "?api_key=not-a-real-key-0000")]
    if valid_key:
        attempts_.append(("the valid key in the query string", {}, f"?api_key={quote(valid_key)}"))
    if profile.auth_scheme:
        attempts_.append(("the scheme alone", {profile.auth_header: profile.auth_scheme}, ""))
    strips = getattr(keyless, "wire_strips_whitespace", False)  # over HTTP "key " is the key itself
    attempts_ += [(f"near key: {name}", profile.auth_headers(k), "") for name, k in near_keys(valid_key).items()
                  if k.strip() and not (strips and k.strip() == valid_key)] if valid_key else []
    rows, sample = [], None
    for name, headers, query in attempts_:
        answer = keyless.predict(profile.positive_example, headers=headers, query=query)
        rows.append({"attempt": name, "status": answer.status, "answered": answer.ok})
        if sample is None or (answer.ok and sample["response"]["status"] != answer.status):
            shown = {k: v.replace(valid_key, PLACEHOLDER) if valid_key else v for k, v in headers.items()}
            sample = exchange("A request without a valid key and its response", profile.positive_example, answer, shown)
    measured = [r for r in rows if r["answered"] or r["status"] in (400, 401, 403, 404)]
    if not measured:
        raise NotAssessed(f"not assessed: no attempt without a valid key got an answer or a refusal: {rows}")
    answered = [r["attempt"] for r in rows if r["answered"]]
    statuses = sorted({r["status"] for r in rows})
    return Evidence(
        attack_succeeded=bool(answered), queries=len(rows) + bool(valid_key), samples=[sample],
        summary=(f"{len(answered)} of {len(rows)} requests without a valid key were answered"
                 + (f" ({', '.join(answered[:4])})" if answered else "") + f"; statuses {statuses}"),
        measurements={"answered_with_prediction": len(answered), "attempts": len(rows)},
        details={"attempts": rows, "statuses": statuses, "auth_header": profile.auth_header,
                 "auth_scheme": profile.auth_scheme, "near_keys_tried": bool(valid_key)})


def no_key_configured(client: Client, profile: TargetProfile, key: str) -> Evidence:
    """With no key configured at all the service must refuse everyone (fail closed), not let everyone in."""
    tried = {"no key": [], "empty key": [(profile.auth_header, "")],
             "any key": [_credential(profile, "anything")], "a once-valid key": [_credential(profile, key)]}
    ctype = ("Content-Type", "application/json")
    body = _json(profile, profile.positive_example)
    answers = {name: client.request("POST", profile.predict_path, [ctype, *headers], body)
               for name, headers in tried.items()}
    answered = [name for name, answer in answers.items() if answer.ok]
    return Evidence(
        attack_succeeded=bool(answered), queries=len(tried),
        summary=f"with no API key configured, {len(answered)} of {len(tried)} callers got an answer "
                f"({', '.join(answered) or 'none'})",
        measurements={"answered": len(answered)},
        details={"statuses": {name: answer.status for name, answer in answers.items()}, "answered": answered})


def unauthenticated_bind(refusal_for: Callable[[str], str | None], hosts: Iterable[str]) -> Evidence:
    """The profile that answers anyone, started on addresses beyond loopback: each start must be refused
    (``refusal_for`` returns the one-line refusal, or None when the service would serve there)."""
    refusals = {host: refusal_for(host) for host in hosts}
    exposed = [host for host, refusal in refusals.items() if refusal is None]
    return Evidence(
        attack_succeeded=bool(exposed), queries=0,
        summary=(f"the unauthenticated profile was refused on {len(refusals) - len(exposed)} of {len(refusals)} "
                 f"addresses beyond loopback" + (f"; it would serve on {', '.join(exposed)}" if exposed else "")),
        measurements={"addresses": len(refusals), "exposed": len(exposed)},
        details={"refusals": refusals, "exposed": exposed})


def app_routes(app) -> dict[str, set[str]]:
    """The routes and methods the app really serves; HEAD and OPTIONS are Werkzeug's automatic extras."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        routes.setdefault(rule.rule, set()).update(set(rule.methods or ()) - {"HEAD", "OPTIONS"})
    return routes


def documented_routes(document: dict) -> dict[str, set[str]]:
    return {path: {method.upper() for method in operations if isinstance(operations, dict)}
            for path, operations in document["paths"].items() if isinstance(path, str) and isinstance(operations, dict)}


def undocumented(app, document: dict) -> dict:
    """An undocumented route is attack surface nobody reviews; a documented one that is gone is a stale contract."""
    served, documented = app_routes(app), documented_routes(document)
    extra = {f"{m} {p}" for p, ms in served.items() for m in ms} - {f"{m} {p}" for p, ms in documented.items() for m in ms}
    missing = {f"{m} {p}" for p, ms in documented.items() for m in ms} - {f"{m} {p}" for p, ms in served.items() for m in ms}
    return {"served": {p: sorted(m) for p, m in served.items()}, "undocumented": sorted(extra),
            "documented_but_not_served": sorted(missing)}


WEAK_KEYS = {"short": "s3cr3t-k3y", "low variety": "abababababababababababab", "a vendor default": "changeme",
             "one digit repeated": "1111111111111111", "a word and a year": "fraudpipe2024"}
"""Keys an operator could configure and an attacker tries first; each is also the attacker's guess list."""


def guess_weak_keys(keyless: Client, profile: TargetProfile, setting: str) -> Evidence:
    """The attacker's dictionary of weak keys, one request each: any answer means a configured key was
    guessable (or no key was needed at all)."""
    answers = {name: keyless.predict(profile.negative_example, headers=profile.auth_headers(key))
               for name, key in WEAK_KEYS.items()}
    guessed = [name for name, answer in answers.items() if answer.ok]
    return Evidence(
        attack_succeeded=bool(guessed), queries=len(answers),
        summary=f"{setting}: {len(guessed)} of {len(answers)} weak keys guessed got an answer"
                + (f" ({', '.join(guessed)})" if guessed else ""),
        measurements={"guessed": len(guessed), "guesses": len(answers)},
        details={"statuses": {name: answer.status for name, answer in answers.items()}, "setting": setting})
