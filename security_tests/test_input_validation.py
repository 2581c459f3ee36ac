import pytest

from security_tests.attacks.malformed import send_malformed
from security_tests.attacks.parser_confusion import send_ambiguous
from security_tests.contract import expect_attack


@pytest.mark.finding("MED-1")
def test_out_of_range_and_ill_typed_inputs_get_422_naming_the_field(variant, start_service, evidence):
    found = evidence.record(send_malformed(start_service(variant)))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.details["all_422_naming_fields"]
    else:
        assert not any(400 <= case["status"] < 500 for case in found.details["cases"])


@pytest.mark.finding("MED-1")
def test_ambiguous_encodings_duplicates_and_deep_nesting_get_a_json_4xx(variant, start_service, evidence):
    found = evidence.record(send_ambiguous(start_service(variant)))
    expect_attack(variant, found)
    if variant.attack_should_succeed:
        assert "nested 2,000 deep (4 KB)" in found.details["crashed_5xx"]
