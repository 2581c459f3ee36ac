import pytest

from security_tests.attacks.extraction import flood_and_extract
from security_tests.conftest import attack_should_succeed, expect_attack

LIMIT = 100


@pytest.mark.finding("HIGH-1")
def test_automated_queries_are_cut_off_at_the_limit(variant, start_service, holdout, evidence):
    client = start_service(variant, rate_limit=f"{LIMIT}/minute")
    X, victim_labels = holdout
    evidence.update(flood_and_extract(client, 500, X, victim_labels, allowed=LIMIT))
    expect_attack(variant, evidence)
    if not attack_should_succeed(variant):
        assert evidence["answered"] == LIMIT
        assert evidence["statuses"].get(429) == 500 - LIMIT
        assert evidence["first_refused_at"] == LIMIT + 1 and int(evidence["retry_after"]) > 0
    else:
        assert evidence["answered"] == 500
