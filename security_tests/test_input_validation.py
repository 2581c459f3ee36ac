import pytest

from security_tests.attacks.malformed import send_malformed
from security_tests.conftest import attack_should_succeed, expect_attack


@pytest.mark.finding("MED-1")
def test_out_of_range_and_ill_typed_inputs_get_422_naming_the_field(variant, start_service, evidence):
    evidence.update(send_malformed(start_service(variant)))
    expect_attack(variant, evidence)
    if not attack_should_succeed(variant):
        assert evidence["all_422_naming_fields"]
    else:
        assert not any(400 <= case["status"] < 500 for case in evidence["cases"])
