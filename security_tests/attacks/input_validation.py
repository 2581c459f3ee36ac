"""MED-1, the whole family: input the schema does not allow must be refused with a 4xx, never answered and
never a 5xx, and input it allows must be answered.

A hand-written list misses what an honest refactor breaks, so the inputs come from the target profile in
four sweeps: every edge of every field (the bounds and one step inside are answered; one step outside,
NaN, Infinity, a string, a boolean, null and a fraction are refused, each refusal naming the field, so an
off-by-one, a dropped bound or a cast instead of a refusal shows); bodies that are not one valid object
(an extra or a missing field, an array, truncated JSON, another media type, an oversized body); bodies two
JSON parsers read differently or that exhaust a recursive parser under the size cap; and the target's own
OpenAPI document driven by schemathesis. Hypothesis strategies over the same schema feed the property tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from security_tests.attacks.client import Answer, Client, require_answer
from security_tests.budget import Need, spends
from security_tests.contract import Evidence, NotAssessed
from security_tests.generated_inputs import JSON_VALUES, LIVE_EXAMPLES, near_rows, search
from security_tests.targets.profile import FieldSpec, TargetProfile

OVERSIZED_BYTES = 1_048_577
_TOKEN = "__raw__"


def _raw(profile: TargetProfile, valid: dict, name: str, token: str) -> bytes:
    """``valid`` with a JSON token no encoder writes (NaN, Infinity) as ``name``'s value."""
    return profile.encode({**valid, name: "<v>"}).replace(b'"<v>"', token.encode())


def names_field(answer: Answer, name: str) -> bool:
    """Whether a refusal names the field: in a ``fields`` object (fraudpipe's shape) or anywhere in its text as
    a word (``"claim_value out of range"``), since another service words its errors its own way."""
    body = answer.body
    if isinstance(body, dict) and isinstance(body.get("fields"), dict) and name in body["fields"]:
        return True
    text = body if isinstance(body, str) else json.dumps(body)
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def malformed_cases(profile: TargetProfile) -> list[tuple[str, object, bytes | None, str, str | None]]:
    """``(name, payload, raw body, content type, the field a refusal should name)``: bodies that are not one
    valid object, each to be refused with a 4xx (a bad value in a field is a range edge, ``edge_cases``)."""
    valid = dict(profile.negative_example)
    last = profile.fields[-1].name
    cases = [("an unexpected extra field", {**valid, "unexpected_field": 1}, None, "unexpected_field"),
             (f"{last} missing", {k: v for k, v in valid.items() if k != last}, None, last),
             ("a JSON array instead of an object", [valid], None, None),
             ("truncated JSON", None, profile.encode(valid)[:-3], None)]
    typed = [(name, payload, raw, "application/json", field) for name, payload, raw, field in cases]
    padding = profile.encode({**valid, "padding": "x" * OVERSIZED_BYTES})
    return typed + [("valid JSON sent as text/plain", None, profile.encode(valid), "text/plain", None),
                    (f"a body over {OVERSIZED_BYTES // 1024} KiB", None, padding, "application/json", None)]


def refusal_evidence(results: list[dict], refused, what: str, **details) -> Evidence:
    """Cases that each had to be refused: the attack succeeds on any that was answered or crashed. A 429
    is the budget's doing, not a refusal of the input: not assessed."""
    limited = [r["case"] for r in results if r["status"] == 429]
    if limited:
        raise NotAssessed(f"not assessed (budget): {len(limited)} of {len(results)} inputs were rate-limited (429)")
    not_refused = [r["case"] for r in results if not refused(r)]
    crashed = [r["case"] for r in results if r["status"] >= 500]
    return Evidence(
        attack_succeeded=bool(not_refused), queries=len(results),
        summary=(f"{len(results) - len(not_refused)} of {len(results)} {what}; "
                 f"accepted or crashed: {', '.join(not_refused) or 'none'}"),
        measurements={"refused_4xx": len(results) - len(not_refused), "crashed_5xx": len(crashed),
                      "cases": len(results)},
        details={"cases": results, "not_refused": not_refused, "crashed_5xx": crashed, **details})


def _short(body) -> object:
    return body if len(str(body)) < 300 else str(body)[:300]


def _malformed_need(profile: TargetProfile) -> Need:
    queries = len(malformed_cases(profile)) + 1
    return Need("", queries, queries, why="one per malformed body and a valid one first")


@spends(_malformed_need)
def send_malformed(client: Client, profile: TargetProfile) -> Evidence:
    """An extra field, a missing one, an array, truncated JSON, another media type, an oversized body;
    ``names_the_bad_field``: the refusal names the field (see ``names_field``)."""
    require_answer(client.predict(profile.negative_example), "the negative example")
    results = []
    for name, payload, raw, content_type, field in malformed_cases(profile):
        answer = client.predict(payload, raw_body=raw, content_type=content_type)
        named = answer.body.get("fields", {}) if isinstance(answer.body, dict) else {}
        results.append({"case": name, "status": answer.status, "answered": answer.ok, "bad_field": field,
                        "fields_named": sorted(named) if isinstance(named, dict) else [],
                        "names_the_bad_field": field is not None and names_field(answer, field),
                        "response": _short(answer.body)})
    found = refusal_evidence(results, lambda r: 400 <= r["status"] < 500, "malformed bodies refused with 4xx",
                             all_422_naming_fields=all(r["status"] == 422 and r["names_the_bad_field"]
                                                       for r in results if r["bad_field"] is not None))
    return replace(found, queries=found.queries + 1)


def body_over_cap(client: Client, profile: TargetProfile, cap: int) -> Evidence:
    """One byte over the documented body cap (a valid object padded by an extra field) must get 413."""
    valid = profile.negative_example
    padding = cap + 1 - len(profile.encode({**valid, "pad": ""}))
    over = profile.encode({**valid, "pad": "x" * padding})
    answer = client.predict(raw_body=over)
    return Evidence(
        attack_succeeded=answer.status != 413, queries=1,
        summary=f"body cap left unset: a {len(over)}-byte body got {answer.status}; the documented cap is {cap} "
                "bytes (413 above)",
        measurements={"documented_cap": cap, "body_bytes": len(over), "status": answer.status})


def _step(spec: FieldSpec) -> float:
    return 1.0 if spec.type in ("int", "bool") else spec.resolution


def edge_cases(spec: FieldSpec) -> list[tuple[str, object, bool]]:
    """(case, value, must be answered); a str value starting with the token is sent as a raw JSON token."""
    if spec.type == "bool":
        return [("false", False, True), ("true", True, True), ("the number 2", 2, False),
                ("as a string", "true", False), ("null", None, False)]
    step = _step(spec)
    low_outside = spec.min if spec.exclusive_min else spec.min - step
    high_outside = spec.max if spec.exclusive_max else spec.max + step
    cases = [("lowest accepted", spec.cast(spec.lowest), True), ("highest accepted", spec.cast(spec.highest), True),
             ("one step below", spec.cast(low_outside), False), ("one step above", spec.cast(high_outside), False),
             ("NaN", _TOKEN + "NaN", False), ("Infinity", _TOKEN + "Infinity", False),
             ("-Infinity", _TOKEN + "-Infinity", False), ("as a string", str(spec.cast(spec.lowest)), False),
             ("boolean", True, False), ("null", None, False)]
    if spec.type == "int":
        cases.append(("a fraction", spec.lowest + 0.5, False))
    return cases


def _edge_body(profile: TargetProfile, valid: dict, spec: FieldSpec, value) -> bytes:
    if isinstance(value, str) and value.startswith(_TOKEN):
        return _raw(profile, valid, spec.name, value[len(_TOKEN):])
    return profile.encode({**valid, spec.name: value})


def _edges_need(profile: TargetProfile) -> Need:
    cases = sum(len(edge_cases(spec)) for spec in profile.fields)
    return Need("", cases, cases, why="each bound, one step inside and outside, and every non-number, per field")


@spends(_edges_need)
def probe_range_edges(client: Client, profile: TargetProfile) -> Evidence:
    """Every edge of every field from the negative example: an off-by-one, a comparison the wrong way, a
    dropped bound or a cast instead of a refusal shows as an inside value refused or an outside one answered."""
    wrong, refusals, cases, limited = [], [], 0, 0
    for spec in profile.fields:
        for case, value, must_answer in edge_cases(spec):
            answer = client.predict(raw_body=_edge_body(profile, profile.negative_example, spec, value))
            cases += 1
            limited += answer.status == 429
            answered, refused = answer.ok, 400 <= answer.status < 500 and isinstance(answer.body, dict)
            if not must_answer:
                refusals.append({"feature": spec.name, "case": case, "status": answer.status,
                                 "names_the_field": names_field(answer, spec.name)})
            if (must_answer and not answered) or (not must_answer and not refused):
                wrong.append({"feature": spec.name, "case": case, "value": str(value).replace(_TOKEN, ""),
                              "status": answer.status, "expected": "answered" if must_answer else "4xx"})
    wrong = [w for w in wrong if w["status"] != 429]  # a rate-limited case measured nothing
    if limited and not wrong:
        raise NotAssessed(f"not assessed (budget): {limited} of {cases} range-edge cases were rate-limited (429)")
    return Evidence(
        attack_succeeded=bool(wrong), queries=cases,
        summary=(f"{cases - limited - len(wrong)} of {cases - limited} range-edge and type cases handled as the schema "
                 "says" + (f"; wrong: {', '.join(w['feature'] + ' ' + w['case'] for w in wrong[:6])}"
                           + (" ..." if len(wrong) > 6 else "") if wrong else "")
                 + (f" ({limited} more rate-limited, not measured)" if limited else "")),
        measurements={"cases": cases, "handled_wrong": len(wrong), "rate_limited": limited},
        details={"wrong": wrong, "refusals": refusals,
                 "all_422_naming_fields": all(r["status"] == 422 and r["names_the_field"] for r in refusals)})


def ambiguous_bodies(profile: TargetProfile) -> list[tuple[str, bytes, str]]:
    """Bodies two JSON parsers read differently, or that exhaust a recursive parser under a 4 KB cap."""
    valid = profile.negative_example
    text = profile.encode(valid).decode()
    first = profile.fields[0].name
    other = json.dumps(profile.positive_example[first])
    return [
        ("nested 2,000 deep (4 KB)", b"[" * 2000 + b"]" * 2000, "application/json"),
        ("duplicate key, last one wins", text[:-1].encode() + f', "{first}": {other}}}'.encode(), "application/json"),
        ("UTF-16 with BOM", text.encode("utf-16"), "application/json"),
        ("UTF-32 with BOM", text.encode("utf-32"), "application/json"),
        ("UTF-8 BOM", b"\xef\xbb\xbf" + text.encode(), "application/json"),
        ("invalid UTF-8 in a key", text[:-1].encode() + b', "m\xff": 1}', "application/json"),
        ("lone surrogate escape", text[:-1].encode() + b', "\\ud800": 1}', "application/json"),
        ("charset=utf-16 declared", text.encode(), "application/json; charset=utf-16"),
    ]


def _ambiguous_need(profile: TargetProfile) -> Need:
    return Need("", len(ambiguous_bodies(profile)), len(ambiguous_bodies(profile)),
                why="one per ambiguous or parser-exhausting body")


@spends(_ambiguous_need)
def send_ambiguous(client: Client, profile: TargetProfile) -> Evidence:
    """A 200 means the service picked one reading of an ambiguous body (a WAF or a log reader may have
    picked another); a 5xx means the parser crashed. Each must get a JSON 4xx."""
    results = []
    for name, raw, content_type in ambiguous_bodies(profile):
        answer = client.predict(raw_body=raw, content_type=content_type)
        results.append({"case": name, "status": answer.status, "json_error": isinstance(answer.body, dict),
                        "response": _short(answer.body)})
    return refusal_evidence(results, lambda r: 400 <= r["status"] < 500 and r["json_error"],
                            "ambiguous or parser-exhausting bodies refused with a JSON 4xx")


OPENAPI_EXAMPLES = 20
"""Generated requests per operation against a live target: counted in its query budget."""
_CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance",
           "content_type_conformance", "negative_data_rejection", "positive_data_acceptance")


def _checks():
    from schemathesis import checks

    return [getattr(checks, name) for name in _CHECKS if hasattr(checks, name)]


def fuzz_openapi(schema, sender: Callable[[], tuple[dict, dict]], examples: int = 150, only_path: str | None = None,
                 shrink: bool = True) -> Evidence:
    """Every operation in ``schema`` with valid and invalid requests alike (no 5xx, a documented status, a
    conforming body, invalid refused, valid answered); the first failure per operation is kept. ``sender()``
    gives each request its headers and how it is sent (live: the budget slice it is counted in)."""
    failures, sent = [], [0]
    rejection = schema.config.checks.negative_data_rejection  # an invalid body refused as too large is refused:
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]  # schemathesis's defaults leave 413 out
    operations = [op.ok() for op in schema.get_all_operations() if only_path in (None, op.ok().path)]
    phases = list(Phase) if shrink else [Phase.explicit, Phase.generate]  # live: no extra shrinking requests
    for operation in operations:
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True, phases=phases,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(*(operation.as_strategy(mode) for mode in schemathesis.GenerationMode)))
        def run(case) -> None:
            headers, call = sender()
            sent[0] += 1
            case.call_and_validate(headers=headers, checks=_checks(), **call)

        try:
            run()
        except (AssertionError, HypothesisException, BaseExceptionGroup) as failure:
            failures.append({"operation": f"{operation.method.upper()} {operation.path}",
                             "failure": _describe(failure)})
    return Evidence(
        attack_succeeded=bool(failures), queries=sent[0],
        summary=(f"schemathesis sent {sent[0]} generated requests to {len(operations)} documented operations; "
                 + (f"{len(failures)} operation(s) failed: "
                    + "; ".join(f"{f['operation']}: {f['failure']}" for f in failures) if failures
                    else "every answer was a documented status with a conforming body, no 5xx")),
        measurements={"operations": len(operations), "failing_operations": len(failures)},
        details={"failures": failures, "checks": list(_CHECKS)})


def _describe(failure: BaseException) -> str:
    """schemathesis groups what it found (FailureGroup, a BaseExceptionGroup); name each failure once."""
    found = [str(e).strip().splitlines()[0] for e in getattr(failure, "exceptions", [failure])]
    return "; ".join(dict.fromkeys(found))[:300]


def _openapi_need(profile: TargetProfile) -> Need:
    queries = 1 + OPENAPI_EXAMPLES if profile.openapi_path else 0
    return Need("", queries, queries, why="the document once, then generated requests to the predict path",
                optional=True)


@spends(_openapi_need)
def fuzz_openapi_document(client: Client, profile: TargetProfile) -> Evidence:
    """The target's own document: in-process every operation of the app (150 examples each, shrunk); live
    the document fetched once, then ``OPENAPI_EXAMPLES`` requests to the predict path, each counted in the
    budget slice it falls in (that slice's key and source address)."""
    if not profile.openapi_path:
        raise NotAssessed("not assessed: the profile names no openapi_path to drive")
    app = getattr(client, "app", None)
    if app is not None:
        return fuzz_openapi(schemathesis.openapi.from_wsgi(profile.openapi_path, app),
                            lambda: (client.credentials(), {}))
    first = client.reserve(1)
    schema = schemathesis.openapi.from_url(f"{first.target}{profile.openapi_path}", timeout=10)

    def sender() -> tuple[dict, dict]:
        slice_client = client.reserve(1)
        return slice_client.credentials(), {"base_url": slice_client.target, "session": slice_client.session}

    found = fuzz_openapi(schema, sender, examples=OPENAPI_EXAMPLES, only_path=profile.predict_path, shrink=False)
    return replace(found, queries=found.queries + 1)


def _generated_need(profile: TargetProfile) -> Need:
    return Need("", LIVE_EXAMPLES, LIVE_EXAMPLES, why="generated JSON bodies (hypothesis), one request each")


@spends(_generated_need)
def generated_json_bodies(client: Client, profile: TargetProfile, examples: int = LIVE_EXAMPLES) -> Evidence:
    """Any JSON value, and rows with every field present but each any JSON value or number: never a 5xx."""
    sent, found = search(client, JSON_VALUES | near_rows(profile),
                         lambda answer: f"answered {answer.status}" if answer.status >= 500 else None, examples)
    return Evidence(
        attack_succeeded=found is not None, queries=sent,
        summary=(f"{sent} generated JSON bodies: " + (f"a 5xx for {found['body'][:80]!r}" if found
                                                      else "none got a 5xx")),
        measurements={"generated_bodies": sent}, details={"counterexample": found})


def valid_body_over_cap(send: Callable[[bytes], Answer], profile: TargetProfile, cap: int, framing: str) -> Evidence:
    """A valid transaction padded with trailing whitespace to one byte over the cap. Whitespace keeps it
    valid JSON even when cut at the cap, so a service that only reads ``cap`` bytes and never checks for
    more answers it: only a 413 shows the cap is enforced (a refusal for another reason proves nothing)."""
    valid = profile.encode(profile.negative_example)
    body = valid + b" " * (cap + 1 - len(valid))
    answer = send(body)
    return Evidence(
        attack_succeeded=answer.status != 413, queries=1,
        summary=f"a valid {len(body)}-byte body ({framing}) with a {cap}-byte cap got {answer.status}",
        samples=[{"label": f"A valid body one byte over the cap ({framing})",
                  "request": {"bytes": len(body), "framing": framing, "starts": valid.decode()},
                  "response": {"status": answer.status, "body": answer.body}}],
        measurements={"cap": cap, "body_bytes": len(body), "status": answer.status},
        details={"framing": framing})
