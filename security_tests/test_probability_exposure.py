import pytest

from security_tests.attacks.probing import probe_boundaries
from security_tests.contract import expect_attack


@pytest.mark.finding("CRIT-2")
def test_responses_carry_no_probability_to_calibrate_probing(variant, start_service, evidence):
    client = start_service(variant, rate_limit="1000/minute")
    found = evidence.record(probe_boundaries(client))
    expect_attack(variant, found)
    assert not found.details["blocked"], "probing was refused, so the boundary measurement is incomplete"
    hour = found.details["features"]["hour_of_day"]["label_only_search"]
    assert hour["flipped"] and hour["queries"] <= 2 * hour["log2_range_over_tolerance"] + 2
