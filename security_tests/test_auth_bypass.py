"""CRIT-1 across its whole family: routes, methods, path spellings, near keys, smuggled keys, no keys."""

import pytest

from fraudpipe.data import FRAUD_EXAMPLE
from fraudpipe.serving.app import create_app
from fraudpipe.serving.auth import add_key, read_keys_file
from security_tests.attacks.auth_bypass import app_routes, bypass_family, documented_routes, no_key_configured, \
    undocumented
from security_tests.contract import expect_attack


def _routes(client) -> dict[str, set[str]]:
    app = getattr(client, "app", None)
    return app_routes(app) if app is not None else documented_routes(client.get("/openapi.json").body)


@pytest.mark.finding("CRIT-1")
def test_only_the_exact_key_in_x_api_key_gets_a_prediction(variant, start_service, assessor_key, tmp_path,
                                                           evidence):
    keys_file = tmp_path / "api-keys"
    add_key(keys_file, "second-client")
    client = start_service(variant, api_keys_file=keys_file, rate_limit="1000/minute")
    stored = [digest.hex() for digest in read_keys_file(keys_file).values()]
    key = client.api_key or assessor_key
    found = evidence.record(bypass_family(client, key, FRAUD_EXAMPLE, _routes(client), stored))
    assert set(found.details["valid_key_statuses"].values()) == {200}, "the valid key must be answered, in any header case"
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.details["predict_attempts_not_refused_401"] == [], "authentication must refuse before anything else"


@pytest.mark.white_box("needs the service started with no API key configured")
@pytest.mark.finding("CRIT-1")
def test_no_key_configured_refuses_everyone(variant, start_service, assessor_key, evidence):
    found = evidence.record(no_key_configured(start_service(variant, api_keys=(), api_keys_file=None), assessor_key,
                                              FRAUD_EXAMPLE))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert set(found.details["statuses"].values()) <= {401, 503}, "refused as unauthenticated or not ready"


@pytest.mark.white_box("compares the app's own route map with its OpenAPI document")
@pytest.mark.parametrize("profile", ["inherited", "hardened"])
def test_every_served_route_and_method_is_documented(profile, trained):
    settings = trained.with_overrides(audit_log=None)
    app = create_app(profile, settings=settings)
    found = undocumented(app, app.test_client().get("/openapi.json").get_json())
    assert found["undocumented"] == [] and found["documented_but_not_served"] == [], found
    planted_app = create_app(profile, settings=settings)
    planted_app.add_url_rule("/debug/predict", "debug", lambda: "", methods=["GET", "POST"])
    planted = undocumented(planted_app, planted_app.test_client().get("/openapi.json").get_json())
    assert planted["undocumented"] == ["GET /debug/predict", "POST /debug/predict"], "the check must see a new route"
