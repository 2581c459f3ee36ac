"""The black-box findings against a live target, from its profile alone (deselected in-process, where
the in-process tests of the same findings run with every variant). Collection order is the order the
query plan allocates in: cheap checks first, then the tests that need a whole untouched window."""

import pytest

from security_tests.attacks.black_box_access import score_exposure, send_malformed
from security_tests.attacks.black_box_limits import rate_limit
from security_tests.attacks.openapi_fuzz import fuzz_live_openapi
from security_tests.contract import Evidence, expect_attack

pytestmark = pytest.mark.black_box


@pytest.mark.finding("CRIT-2")
def test_no_part_of_the_answer_carries_a_score(variant, live, evidence):
    budget = live.budget("CRIT-2")
    found = evidence.record(live.measure(lambda: score_exposure(budget.client(), live.profile)))
    expect_attack(variant, found)


@pytest.mark.finding("MED-1")
def test_inputs_outside_the_schema_get_a_4xx(variant, live, evidence):
    """The profile's schema by hand, then (when the profile names one) the target's own OpenAPI document
    driven by schemathesis."""
    budget = live.budget("MED-1")
    client = budget.client()
    found = live.measure(lambda: send_malformed(client, live.profile))
    if live.profile.openapi_path:
        fuzzed = live.measure(lambda: fuzz_live_openapi(client, live.profile))
        found = Evidence(attack_succeeded=found.attack_succeeded or fuzzed.attack_succeeded,
                         queries=found.queries + fuzzed.queries, summary=f"{found.summary}; {fuzzed.summary}",
                         samples=found.samples, measurements={**found.measurements, **{
                             f"openapi {k}": v for k, v in fuzzed.measurements.items()}},
                         details={**found.details, "openapi_fuzz": fuzzed.details})
    expect_attack(variant, evidence.record(found))


@pytest.mark.finding("HIGH-1")
def test_the_promised_limit_holds_per_key_and_per_address(variant, live, evidence):
    if live.profile.rate_limit is None:
        pytest.skip("not assessed: the profile promises no limit (set rate_limit.requests)")
    budget = live.budget("HIGH-1")
    found = evidence.record(live.measure(lambda: rate_limit(
        budget.fresh(), budget.same_key_elsewhere(), budget.other_key_same_address(), live.profile)))
    expect_attack(variant, found)

