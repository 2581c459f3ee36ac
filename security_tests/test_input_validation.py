import pytest

from security_tests.attacks.malformed import send_malformed
from security_tests.attacks.openapi_fuzz import fuzz_openapi, wsgi_schema
from security_tests.attacks.parser_confusion import send_ambiguous
from security_tests.attacks.range_edges import probe_range_edges
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


@pytest.mark.finding("MED-1")
def test_every_edge_of_every_feature_range_is_answered_or_refused_as_documented(variant, start_service, evidence):
    found = evidence.record(probe_range_edges(start_service(variant, rate_limit="100000/minute")))
    expect_attack(variant, found)


@pytest.mark.finding("MED-1")
@pytest.mark.white_box("in-process only: against a live target the MED-1 black-box test drives the target's "
                       "OpenAPI document when the profile names openapi_path")
def test_the_service_own_openapi_document_survives_schemathesis(variant, start_service, assessor_key, evidence):
    client = start_service(variant, rate_limit="100000/minute")
    found = evidence.record(fuzz_openapi(wsgi_schema(client.app), {"X-API-Key": assessor_key}))
    expect_attack(variant, found)
