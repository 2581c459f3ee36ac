import pytest

from security_tests.attacks.extraction import flood_and_extract
from security_tests.contract import expect_attack

LIMIT = 100


@pytest.mark.finding("HIGH-1")
def test_automated_queries_are_cut_off_at_the_limit(variant, start_service, holdout, evidence):
    client = start_service(variant, rate_limit=f"{LIMIT}/minute")
    X, victim_labels = holdout
    found = evidence.record(flood_and_extract(client, 500, X, victim_labels, allowed=LIMIT))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["answered"] == LIMIT
        assert found.details["statuses"].get(429) == 500 - LIMIT
        assert found.measurements["first_refused_at"] == LIMIT + 1 and int(found.details["retry_after"]) > 0
    else:
        assert found.measurements["answered"] == 500
