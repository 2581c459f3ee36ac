import pytest

from security_tests.attacks.access import unauthenticated_access
from security_tests.attacks.probing import SEED_TRANSACTION
from security_tests.conftest import attack_should_succeed, expect_attack


@pytest.mark.finding("CRIT-1")
def test_requests_without_a_valid_key_get_no_prediction(variant, start_service, assessor_key, evidence):
    evidence.update(unauthenticated_access(start_service(variant), SEED_TRANSACTION, assessor_key))
    expect_attack(variant, evidence)
    if not attack_should_succeed(variant):
        assert evidence["statuses"] == [401]
    else:
        assert evidence["answered_with_prediction"] == evidence["requests"]
