"""MED-1: every edge of every feature's range, from the schema the service says it enforces.

For each feature: the two bounds and the smallest step inside them must be answered; the smallest step
outside them, NaN, +/-Infinity, a string, a boolean, null and (for integers) a fraction must be refused
with a 4xx. A validator that is off by one, compares the wrong way, drops a bound or casts instead of
refusing answers one of the outside values or refuses one of the inside ones.
"""

from __future__ import annotations

import json

from fraudpipe.data import FEATURES, LEGITIMATE_EXAMPLE, Feature
from security_tests.attacks.client import Client
from security_tests.contract import Evidence

_TOKEN = "__raw__"


def _step(feature: Feature) -> float:
    return 1.0 if feature.kind == "int" else 0.01


def edge_cases(feature: Feature) -> list[tuple[str, object, bool]]:
    """(case, value, must be answered); a str value starting with the token is sent as a raw JSON token."""
    step = _step(feature)
    low_inside = feature.low if feature.low_inclusive else feature.low + step
    low_outside = feature.low - step if feature.low_inclusive else feature.low
    cases = [("lowest accepted", feature.cast(low_inside), True), ("highest accepted", feature.cast(feature.high), True),
             ("one step below", feature.cast(low_outside), False),
             ("one step above", feature.cast(feature.high + step), False),
             ("NaN", _TOKEN + "NaN", False), ("Infinity", _TOKEN + "Infinity", False),
             ("-Infinity", _TOKEN + "-Infinity", False), ("as a string", str(feature.cast(low_inside)), False),
             ("boolean", True, False), ("null", None, False)]
    if feature.kind == "int":
        cases.append(("a fraction", feature.low + 0.5, False))
    return cases


def _body(feature: Feature, value) -> bytes:
    if isinstance(value, str) and value.startswith(_TOKEN):
        return json.dumps({**LEGITIMATE_EXAMPLE, feature.name: "<v>"}).replace('"<v>"', value[len(_TOKEN):]).encode()
    return json.dumps({**LEGITIMATE_EXAMPLE, feature.name: value}).encode()


def probe_range_edges(client: Client) -> Evidence:
    wrong = []
    cases = 0
    for feature in FEATURES:
        for case, value, must_answer in edge_cases(feature):
            answer = client.predict(raw_body=_body(feature, value))
            cases += 1
            answered, refused = answer.ok, 400 <= answer.status < 500 and isinstance(answer.body, dict)
            if (must_answer and not answered) or (not must_answer and not refused):
                wrong.append({"feature": feature.name, "case": case, "value": str(value).replace(_TOKEN, ""),
                              "status": answer.status, "expected": "answered" if must_answer else "4xx"})
    return Evidence(
        attack_succeeded=bool(wrong), queries=cases,
        summary=(f"{cases - len(wrong)} of {cases} range-edge and type cases handled as the schema says"
                 + (f"; wrong: {', '.join(w['feature'] + ' ' + w['case'] for w in wrong[:6])}"
                    + (" ..." if len(wrong) > 6 else "") if wrong else "")),
        measurements={"cases": cases, "handled_wrong": len(wrong)},
        details={"wrong": wrong})
