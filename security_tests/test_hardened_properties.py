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
