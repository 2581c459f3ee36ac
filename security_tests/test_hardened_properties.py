"""Property suite over arbitrary JSON: the hardened service never answers 5xx and never leaks a
probability, and every in-range transaction is answered. Each property also runs with its control off,
where hypothesis must find a counterexample, so the property can fail."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudpipe.data import FEATURES
from security_tests.contract import HARDENED, hardened_without

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=12,
)
near_transactions = st.fixed_dictionaries(
    {f.name: json_values | st.integers(-10, 2000) | st.floats(-1e7, 1e7) for f in FEATURES},
    optional={"extra": json_values},
)


def in_range(feature):
    if feature.kind == "float":
        return st.floats(min_value=feature.low, max_value=feature.high, exclude_min=not feature.low_inclusive,
                         allow_nan=False, allow_infinity=False)
    return st.integers(int(feature.low), int(feature.high))


valid_transactions = st.fixed_dictionaries({f.name: in_range(f) for f in FEATURES})


def _nest(depth: int, opener: bytes) -> bytes:
    """Arrays reach 2,047 deep under the 4 KB cap (past the recursion limit, also as hypothesis raises it)."""
    inner, closer = (b'{"":[', b"]}") if opener == b"{" else (b"[", b"]")
    return inner * (depth // len(inner)) + b"1" + closer * (depth // len(inner))


def _duplicated(transaction: dict, key: str, value) -> bytes:
    return json.dumps(transaction)[:-1].encode() + b", " + json.dumps({key: value})[1:].encode()


def _encoded(value, codec: str) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode(codec, "surrogatepass" if codec != "latin-1" else "replace")


deep_bodies = st.builds(_nest, st.integers(1, 64) | st.integers(1990, 2047), st.sampled_from([b"[", b"{"]))
duplicate_bodies = st.builds(_duplicated, valid_transactions, st.sampled_from([f.name for f in FEATURES] + ["x"]),
                             json_values)
encoded_bodies = st.builds(_encoded, valid_transactions | json_values,
                           st.sampled_from(["utf-16", "utf-32", "utf-16-le", "utf-32-be", "utf-8-sig", "latin-1",
                                            "utf-8"]))
surrogate_bodies = st.builds(lambda t, s: json.dumps(t)[:-1].encode() + b', "' + s.encode() + b'": 1}',
                             valid_transactions, st.sampled_from(["\\ud800", "\\udfff", "\\ud83d"]))
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-16", "text/plain", ""]) | \
    st.builds(lambda t: f"application/json; {t}", header_text) | header_text
QUICK = settings(max_examples=150, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def check(property_holds: bool, run) -> None:
    if property_holds:
        run()
    else:
        with pytest.raises(AssertionError):
            run()


def holds_only_with(control: str) -> list:
    """The property must hold on the hardened service and must be broken with ``control`` off."""
    return [pytest.param(v, holds, id=v.id) for v, holds in ((HARDENED, True), (hardened_without(control), False))]


@pytest.mark.parametrize("variant, holds", holds_only_with("validate_input"))
def test_no_json_body_gets_a_5xx(start_service, variant, holds):
    client = start_service(variant, rate_limit="100000/minute")

    @QUICK
    @given(body=json_values | near_transactions)
    def never_5xx(body):
        answer = client.predict(raw_body=json.dumps(body).encode())
        assert answer.status < 500, answer

    check(holds, never_5xx)


@pytest.mark.parametrize("variant, holds", holds_only_with("hide_probability"))
def test_no_answer_carries_a_probability(start_service, variant, holds):
    client = start_service(variant, rate_limit="100000/minute")

    @QUICK
    @given(body=valid_transactions | json_values | near_transactions)
    def no_probability(body):
        answer = client.predict(raw_body=json.dumps(body).encode())
        assert "fraud_probability" not in json.dumps(answer.body)

    check(holds, no_probability)


@pytest.mark.parametrize("variant, holds", holds_only_with("validate_input"))
def test_no_nesting_duplicate_encoding_or_header_gets_a_5xx(start_service, assessor_key, variant, holds):
    """Deep nesting under the body cap, duplicate keys, UTF-16/32, BOMs, lone surrogates, any Content-Type
    and header values: always a 4xx or an answer, never a 5xx."""
    client = start_service(variant, rate_limit="100000/minute")

    @QUICK
    @given(raw=deep_bodies | duplicate_bodies | encoded_bodies | surrogate_bodies, content_type=content_types,
           key=st.sampled_from([assessor_key]) | header_text, forwarded=header_text)
    def never_5xx(raw, content_type, key, forwarded):
        answer = client.predict(raw_body=raw)
        assert answer.status < 500, (answer, raw[:80])
        answer = client.predict(raw_body=raw, content_type=content_type,
                                headers={"X-API-Key": key, "X-Forwarded-For": forwarded})
        assert answer.status < 500, (answer, raw[:80], content_type)
        assert client.get("/health", headers={"X-API-Key": key}).status < 500

    check(holds, never_5xx)


@QUICK
@given(raw=st.binary(max_size=300))
def test_no_raw_body_gets_a_5xx(start_service, raw):
    answer = start_service(HARDENED, rate_limit="100000/minute").predict(raw_body=raw)
    assert answer.status == 200 or 400 <= answer.status < 500, answer


@QUICK
@given(transaction=valid_transactions)
def test_every_in_range_transaction_is_answered(start_service, transaction):
    answer = start_service(HARDENED, rate_limit="100000/minute").predict(transaction)
    assert answer.status == 200 and set(answer.body) == {"prediction", "label"}
