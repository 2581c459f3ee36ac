"""Generated inputs from a target profile (hypothesis strategies), and one driver that sends them until an
answer breaks a property: shared by the findings whose attacks send generated bodies (MED-1: no 5xx; CRIT-2:
no score in any answer, refusals included). The driver never shrinks: live every request counts against the
plan, and the first counterexample is evidence enough."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from security_tests.attacks.client import Answer, Client
from security_tests.targets.profile import FieldSpec, TargetProfile

IN_PROCESS_EXAMPLES = 150
LIVE_EXAMPLES = 20


def search(client: Client, bodies, violation: Callable[[Answer], str | None],
           examples: int) -> tuple[int, dict | None]:
    """Send generated bodies (JSON values, or raw bytes) until one answer breaks the property; returns how
    many were sent and the counterexample, or None."""
    sent, found = [0], [None]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(body=bodies)
    def holds(body) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = client.predict(raw_body=raw)
        sent[0] += 1
        reason = violation(answer)
        if reason:
            found[0] = {"body": raw[:200].decode("utf-8", "replace"), "status": answer.status, "reason": reason}
            raise AssertionError(reason)

    try:
        holds()
    except AssertionError:
        pass
    return sent[0], found[0]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=12,
)
QUICK = settings(max_examples=IN_PROCESS_EXAMPLES, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def _in_range(spec: FieldSpec):
    if spec.type == "float":
        return st.floats(min_value=spec.min, max_value=spec.max, exclude_min=spec.exclusive_min,
                         exclude_max=spec.exclusive_max, allow_nan=False, allow_infinity=False)
    if spec.type == "bool":
        return st.booleans()
    return st.integers(math.ceil(spec.lowest), math.floor(spec.highest))


def valid_rows(profile: TargetProfile):
    """Every field present, in range and of its type: each must be answered."""
    return st.fixed_dictionaries({spec.name: _in_range(spec) for spec in profile.fields})


def near_rows(profile: TargetProfile):
    """Every field present, each anything from in range to any JSON value, sometimes with an extra field."""
    return st.fixed_dictionaries({spec.name: JSON_VALUES | st.integers(-10, 2000) | st.floats(-1e7, 1e7)
                                  for spec in profile.fields}, optional={"extra": JSON_VALUES})


def _nest(depth: int, opener: bytes) -> bytes:
    """Arrays reach 2,047 deep under the 4 KB cap (past the recursion limit, also as hypothesis raises it)."""
    inner, closer = (b'{"":[', b"]}") if opener == b"{" else (b"[", b"]")
    return inner * (depth // len(inner)) + b"1" + closer * (depth // len(inner))


def _duplicated(row: dict, key: str, value) -> bytes:
    return json.dumps(row)[:-1].encode() + b", " + json.dumps({key: value})[1:].encode()


def _encoded(value, codec: str) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode(codec, "surrogatepass" if codec != "latin-1" else "replace")


def confusing_bodies(profile: TargetProfile):
    """Deep nesting under the body cap, duplicate keys, UTF-16/32, BOMs and lone surrogates around valid rows."""
    rows = valid_rows(profile)
    deep = st.builds(_nest, st.integers(1, 64) | st.integers(1990, 2047), st.sampled_from([b"[", b"{"]))
    duplicates = st.builds(_duplicated, rows, st.sampled_from([*profile.field_names, "x"]), JSON_VALUES)
    encoded = st.builds(_encoded, rows | JSON_VALUES,
                        st.sampled_from(["utf-16", "utf-32", "utf-16-le", "utf-32-be", "utf-8-sig", "latin-1", "utf-8"]))
    surrogates = st.builds(lambda r, s: json.dumps(r)[:-1].encode() + b', "' + s.encode() + b'": 1}',
                           rows, st.sampled_from(["\\ud800", "\\udfff", "\\ud83d"]))
    return deep | duplicates | encoded | surrogates


HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
CONTENT_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-16", "text/plain", ""]) | \
    st.builds(lambda t: f"application/json; {t}", HEADER_TEXT) | HEADER_TEXT
