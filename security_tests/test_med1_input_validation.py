"""MED-1 — no input range or type validation: every range edge, bodies that are not one object, bodies
parsers read differently, generated JSON and the target's own OpenAPI document, each refused with a 4xx
(never answered, never a 5xx) while valid input is answered. The finding's tests run in-process (inherited,
hardened, hardened without ``validate_input``) and against a live target, but the default body cap, which
needs the inside. The properties at the end (any bytes, any header, every in-range row) hold on the hardened
service in-process."""

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from security_tests.attacks.client import Answer
from security_tests.attacks.input_validation import (body_over_cap, fuzz_openapi_document, generated_json_bodies,
                                                     probe_range_edges, send_ambiguous, send_malformed,
                                                     valid_body_over_cap)
from security_tests.contract import HARDENED, expect_attack, hardened_without
from security_tests.documented import documented_defaults, left_unset
from security_tests.generated_inputs import (CONTENT_TYPES, HEADER_TEXT, IN_PROCESS_EXAMPLES, LIVE_EXAMPLES, QUICK,
                                             confusing_bodies, valid_rows)
from security_tests.markers import runs
from security_tests.targets.profile import fraudpipe_target

PROFILE = fraudpipe_target()


@pytest.mark.finding("MED-1")
@runs(send_malformed)
def test_extra_missing_and_malformed_bodies_get_a_4xx(variant, target, evidence):
    reach = target()
    found = evidence.record(send_malformed(reach.client(), reach.profile))
    expect_attack(variant, found)
    if reach.profile.own_service and not variant.attack_should_succeed:
        assert found.details["all_422_naming_fields"], "an extra or a missing field is refused with 422 naming it"


@pytest.mark.finding("MED-1")
@runs(send_ambiguous)
def test_ambiguous_encodings_duplicates_and_deep_nesting_get_a_json_4xx(variant, target, evidence):
    reach = target()
    found = evidence.record(send_ambiguous(reach.client(), reach.profile))
    expect_attack(variant, found)
    if variant.attack_should_succeed:
        assert "nested 2,000 deep (4 KB)" in found.details["crashed_5xx"]


@pytest.mark.finding("MED-1")
@runs(probe_range_edges)
def test_every_edge_of_every_feature_range_is_answered_or_refused_as_documented(variant, target, evidence):
    """Each bound and one step inside it answered; one step outside, NaN, +-Infinity, a string, a boolean,
    null and a fraction refused, with 422 naming the field."""
    reach = target(rate_limit="100000/minute")
    found = evidence.record(probe_range_edges(reach.client(), reach.profile))
    expect_attack(variant, found)
    if reach.profile.own_service and not variant.attack_should_succeed:
        assert found.details["all_422_naming_fields"], "each bad value is refused with 422 naming its field"
    elif variant.attack_should_succeed:
        assert not any(400 <= r["status"] < 500 for r in found.details["refusals"]), \
            "without validation no bad value is refused"


@pytest.mark.finding("MED-1")
@runs(fuzz_openapi_document)
def test_the_service_own_openapi_document_survives_schemathesis(variant, target, evidence):
    reach = target(rate_limit="100000/minute")
    found = evidence.record(fuzz_openapi_document(reach.client(), reach.profile))
    expect_attack(variant, found)


def _holds_only_with(control: str) -> list:
    """The property must hold on the hardened service and must be broken with ``control`` off."""
    return [pytest.param(v, holds, id=v.id) for v, holds in ((HARDENED, True), (hardened_without(control), False))]


def _check(property_holds: bool, run) -> None:
    if property_holds:
        run()
    else:
        with pytest.raises(AssertionError):
            run()


@pytest.mark.finding("MED-1")
@runs(generated_json_bodies)
def test_no_json_body_gets_a_5xx(variant, target, evidence):
    reach = target(rate_limit="100000/minute")
    examples = LIVE_EXAMPLES if reach.live else IN_PROCESS_EXAMPLES
    found = evidence.record(generated_json_bodies(reach.client(), reach.profile, examples))
    expect_attack(variant, found)


@pytest.mark.parametrize("variant, holds", _holds_only_with("validate_input"))
def test_no_nesting_duplicate_encoding_or_header_gets_a_5xx(start_service, assessor_key, variant, holds):
    """Deep nesting under the body cap, duplicate keys, UTF-16/32, BOMs, lone surrogates, any Content-Type
    and header values: always a 4xx or an answer, never a 5xx."""
    client = start_service(variant, rate_limit="100000/minute")
    header = PROFILE.auth_header

    @QUICK
    @given(raw=confusing_bodies(PROFILE), content_type=CONTENT_TYPES,
           key=st.sampled_from([assessor_key]) | HEADER_TEXT, forwarded=HEADER_TEXT)
    def never_5xx(raw, content_type, key, forwarded):
        answer = client.predict(raw_body=raw)
        assert answer.status < 500, (answer, raw[:80])
        answer = client.predict(raw_body=raw, content_type=content_type,
                                headers={header: key, "X-Forwarded-For": forwarded})
        assert answer.status < 500, (answer, raw[:80], content_type)
        assert client.get("/health", headers={header: key}).status < 500

    _check(holds, never_5xx)


@QUICK
@given(raw=st.binary(max_size=300))
def test_no_raw_body_gets_a_5xx(start_service, raw):
    answer = start_service(HARDENED, rate_limit="100000/minute").predict(raw_body=raw)
    assert answer.status == 200 or 400 <= answer.status < 500, answer


@QUICK
@given(row=valid_rows(PROFILE))
def test_every_in_range_input_is_answered(start_service, row):
    answer = start_service(HARDENED, rate_limit="100000/minute").predict(row)
    assert answer.status == 200 and set(answer.body) == {"prediction", "label"}


@pytest.mark.white_box("builds the service in-process with the body cap left at its default")
@pytest.mark.finding("MED-1")
@runs(body_over_cap)
def test_the_documented_body_cap_is_in_force_when_nothing_is_set(variant, trained, service_app, evidence):
    cap = int(documented_defaults()["max_body_bytes"])
    client = service_app(variant, left_unset(trained, "max_body_bytes"))
    found = evidence.record(body_over_cap(client, PROFILE, cap))
    assert found.measurements["body_bytes"] == cap + 1
    expect_attack(variant, found)


CAP = 1024


def _sender(client, framing):
    """Content-Length declared, or chunked as gunicorn hands it on: ``Transfer-Encoding: chunked`` and a
    terminated input, so the request has no length (werkzeug's test client would otherwise declare one)."""
    if framing == "Content-Length":
        return lambda body: client.predict(raw_body=body)

    def send_chunked(body):
        response = client.app.test_client().post(
            "/predict", input_stream=io.BytesIO(body), content_type="application/json",
            headers={**client.credentials(), "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True, "REMOTE_ADDR": client.remote_addr})
        return Answer(response.status_code, response.get_json(silent=True), dict(response.headers))
    return send_chunked


@pytest.mark.white_box("sets the service's body cap; sends a chunked body without a length in-process")
@pytest.mark.finding("MED-1")
@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
@runs(valid_body_over_cap)
def test_a_valid_body_one_byte_over_the_cap_gets_413(variant, start_service, framing, evidence):
    client = start_service(variant, max_body_bytes=CAP)
    found = evidence.record(valid_body_over_cap(_sender(client, framing), PROFILE, CAP, framing))
    expect_attack(variant, found)
    if variant.attack_should_succeed:
        assert found.measurements["status"] == 200, "without the cap the padded body is a valid transaction"
