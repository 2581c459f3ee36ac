import pytest

from fraudpipe.data import FRAUD_EXAMPLE
from security_tests.attacks.access import unauthenticated_access
from security_tests.contract import expect_attack


@pytest.mark.finding("CRIT-1")
def test_requests_without_a_valid_key_get_no_prediction(variant, start_service, assessor_key, evidence):
    found = evidence.record(unauthenticated_access(start_service(variant), FRAUD_EXAMPLE, assessor_key))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.details["statuses"] == [401]
    else:
        assert found.measurements["answered_with_prediction"] == found.queries
