"""CRIT-1 — the inference API has no authentication: every way a caller without the key might still get
an answer (no key, near keys, smuggled keys, other routes and spellings, no key configured, the profile
without authentication served beyond loopback). The same tests run in-process (inherited, hardened, hardened
without ``auth``) and against a live target."""

import subprocess
import sys

import pytest

from fraudpipe.errors import ConfigError
from fraudpipe.serving.app import create_app
from fraudpipe.serving.auth import add_key, read_keys_file
from fraudpipe.serving.server import check_serving
from security_tests.attacks.authentication import (WEAK_KEYS, bypass_family, guess_weak_keys, no_key_configured,
                                                   routes_of, unauthenticated_access, unauthenticated_bind,
                                                   undocumented)
from security_tests.attacks.client import FlaskClient
from security_tests.contract import NotAssessed, expect_attack
from security_tests.markers import runs
from security_tests.servers import ROOT, free_port, settings_env
from security_tests.misconfiguration import as_deployed, deploy
from security_tests.targets.profile import fraudpipe_target

PROFILE = fraudpipe_target()


def _key(reach) -> str:
    if not reach.key:
        raise NotAssessed("not assessed: no valid key to derive near keys from; give --api-key")
    return reach.key


@pytest.mark.finding("CRIT-1")
@runs(unauthenticated_access)
def test_requests_without_a_valid_key_get_no_answer(variant, target, evidence):
    reach = target()
    found = evidence.record(unauthenticated_access(reach.keyless(), reach.client(), reach.profile, reach.key))
    expect_attack(variant, found)
    if not variant.attack_should_succeed and not reach.live:
        assert found.details["statuses"] == [401], "fraudpipe refuses with 401 and nothing else"


@pytest.mark.finding("CRIT-1")
@runs(bypass_family)
def test_only_the_exact_key_in_the_auth_header_gets_an_answer(variant, target, tmp_path, evidence):
    keys_file = tmp_path / "api-keys"
    add_key(keys_file, "second-client")
    reach = target(api_keys_file=keys_file, rate_limit="1000/minute")
    stored = [] if reach.live else [digest.hex() for digest in read_keys_file(keys_file).values()]
    key, client = _key(reach), reach.client()
    found = evidence.record(bypass_family(reach.keyless(), client, reach.profile, key,
                                          routes_of(client, reach.profile), stored))
    assert set(found.details["valid_key_statuses"].values()) == {200}, "the valid key must be answered, in any header case"
    expect_attack(variant, found)
    if not variant.attack_should_succeed and not reach.live:
        assert found.details["predict_attempts_not_refused_401"] == [], "authentication must refuse before anything else"


@pytest.mark.white_box("needs the service started with no API key configured")
@pytest.mark.finding("CRIT-1")
@runs(no_key_configured)
def test_no_key_configured_refuses_everyone(variant, target, evidence):
    reach = target(api_keys=(), api_keys_file=None)
    found = evidence.record(no_key_configured(reach.keyless(), reach.profile, reach.key))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert set(found.details["statuses"].values()) <= {401, 503}, "refused as unauthenticated or not ready"


BEYOND_LOOPBACK = ("0.0.0.0", "::", "[::]", "10.0.0.1", "localhost.example", "::ffff:10.0.0.1")
UNHELD_ADDRESS = "192.0.2.1"  # TEST-NET-1: a serve that does not refuse fails to bind, and exposes nothing


@pytest.mark.white_box("starts `serve` with the unauthenticated profile on addresses beyond loopback")
@pytest.mark.finding("CRIT-1")
@runs(unauthenticated_bind)
def test_serve_refuses_to_expose_the_unauthenticated_profile_beyond_loopback(trained, evidence):
    """``serve --profile inherited`` binds loopback only: serve's check on each spelling of elsewhere, then
    the real command on an address this machine does not hold."""
    def refusal_for(host: str) -> str | None:
        if host != UNHELD_ADDRESS:
            try:
                check_serving(trained, "inherited", host, 1)
            except ConfigError as exc:
                return str(exc)
            return None
        started = subprocess.run([sys.executable, "-m", "fraudpipe", "serve", "--profile", "inherited", "--host", host,
                                  "--port", str(free_port())], env=settings_env(trained), cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
        said = (started.stdout + started.stderr).strip().splitlines()
        return said[-1] if started.returncode == 2 and said and "no authentication" in said[-1] else None

    found = evidence.record(unauthenticated_bind(refusal_for, (*BEYOND_LOOPBACK, UNHELD_ADDRESS)))
    assert not found.attack_succeeded, found.summary


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


@pytest.mark.white_box("starts the service in-process with a weak API key configured")
@pytest.mark.finding("CRIT-1")
@pytest.mark.parametrize("weak", list(WEAK_KEYS))
@runs(guess_weak_keys)
def test_a_weak_api_key_is_refused_at_start(variant, trained, service_app, weak, evidence):
    """A short, low-variety or default key is the first thing an attacker tries: the service must refuse to
    start with it (the operator then makes one with ``keys new``), not let the guess in."""
    client, refusal = deploy(lambda **o: service_app(variant, trained.with_overrides(audit_log=None, **o)),
                             {"api_keys": (WEAK_KEYS[weak],)}, {"api_keys": trained.api_keys})
    found = evidence.record(guess_weak_keys(FlaskClient(client.app), PROFILE,
                                            as_deployed(f"API key {WEAK_KEYS[weak]!r} ({weak})", refusal)))
    found.details["refused_at_start"] = refusal
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert refusal and set(found.details["statuses"].values()) == {401}
