"""Requests built from a target profile alone: random in-range rows and schema-breaking bodies."""

from __future__ import annotations

import json

import numpy as np

from security_tests.targets.profile import FieldSpec, TargetProfile

OVERSIZED_BYTES = 1_048_577


def random_rows(profile: TargetProfile, n: int, seed: int) -> list[dict]:
    """Uniform over each field's accepted range: the attacker knows the schema, not the data."""
    rng = np.random.default_rng(seed)
    columns = []
    for spec in profile.fields:
        if spec.type == "float":
            columns.append(rng.uniform(spec.lowest, spec.highest, n))
        else:
            columns.append(rng.integers(int(np.ceil(spec.lowest)), int(np.floor(spec.highest)) + 1, n))
    return [profile.row(values) for values in zip(*columns)]


def _raw(valid: dict, name: str, token: str) -> bytes:
    return json.dumps({**valid, name: "<v>"}).replace('"<v>"', token).encode()


def _field_cases(valid: dict, spec: FieldSpec) -> list[tuple[str, dict | None, bytes | None]]:
    name, cases = spec.name, []
    if spec.type != "bool":
        gap = 1 if spec.type == "int" else max(spec.step, 1.0)
        below = spec.min if spec.exclusive_min else spec.min - gap
        above = spec.max if spec.exclusive_max else spec.max + gap
        cases += [(f"{name} below its range ({below})", {**valid, name: spec.cast(below)}, None),
                  (f"{name} above its range ({above})", {**valid, name: spec.cast(above)}, None),
                  (f"{name} as a boolean", {**valid, name: True}, None)]
    else:
        cases.append((f"{name} as the number 2", {**valid, name: 2}, None))
    if spec.type == "int":
        cases.append((f"{name} not a whole number", {**valid, name: spec.min + 0.5}, None))
    cases.append((f"{name} as a string", {**valid, name: str(valid[name])}, None))
    return cases


def malformed_cases(profile: TargetProfile) -> list[tuple[str, dict | list | None, bytes | None, str]]:
    """``(name, payload, raw body, content type)``: each must be refused with a 4xx, never a 5xx."""
    valid = dict(profile.negative_example)
    first, last = profile.fields[0].name, profile.fields[-1].name
    cases = [c for spec in profile.fields for c in _field_cases(valid, spec)]
    cases += [(f"{first} NaN", None, _raw(valid, first, "NaN")),
              (f"{first} Infinity", None, _raw(valid, first, "Infinity")),
              (f"{first} null", {**valid, first: None}, None),
              (f"{last} missing", {k: v for k, v in valid.items() if k != last}, None),
              ("an unexpected extra field", {**valid, "unexpected_field": 1}, None),
              ("a JSON array instead of an object", [valid], None),
              ("truncated JSON", None, json.dumps(valid).encode()[:-3])]
    typed = [(name, payload, raw, "application/json") for name, payload, raw in cases]
    padding = json.dumps({**valid, "padding": "x" * OVERSIZED_BYTES}).encode()
    return typed + [("valid JSON sent as text/plain", None, json.dumps(valid).encode(), "text/plain"),
                    (f"a body over {OVERSIZED_BYTES // 1024} KiB", None, padding, "application/json")]
