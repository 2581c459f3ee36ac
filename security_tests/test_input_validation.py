import pytest

from security_tests.attacks.malformed import send_malformed
from security_tests.conftest import expect_attack, variants


@pytest.mark.finding("MED-1")
@pytest.mark.parametrize("variant", variants("MED-1"))
def test_out_of_range_and_ill_typed_inputs_get_422_naming_the_field(variant, start_service, evidence):
    evidence.update(send_malformed(start_service(variant)))
    expect_attack(variant, evidence)
    if variant == "hardened":
        assert evidence["all_422_naming_fields"]
    else:
        assert not any(400 <= case["status"] < 500 for case in evidence["cases"])
