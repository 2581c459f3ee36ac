"""The defaults the README documents are the ones in force: the table equals ``Settings()``, and with the
rate limit left unset the hardened service answers exactly the documented number per window."""

import dataclasses

import pytest

from fraudpipe.settings import Settings
from security_tests.attacks.extraction import random_queries
from security_tests.conftest import attack_should_succeed, expect_attack, start_app, variant_controls
from security_tests.documented import documented_defaults, mismatches, per_window


@pytest.mark.white_box("compares the README's settings table with the Settings dataclass")
def test_readme_settings_table_equals_the_settings_defaults():
    documented = documented_defaults()
    assert mismatches(documented, Settings) == {}
    doctored = {**documented, "rate_limit": "1000/minute"}
    assert set(mismatches(doctored, Settings)) == {"rate_limit"}, "the comparison must see a changed default"


@pytest.mark.white_box("builds the service in-process with the rate limit left at its default")
@pytest.mark.finding("HIGH-1")
def test_the_documented_default_limit_is_in_force_when_nothing_is_set(request, variant, trained, assessor_key,
                                                                       evidence):
    limit = per_window(documented_defaults()["rate_limit"])
    inherited = {f.name: getattr(trained, f.name) for f in dataclasses.fields(Settings) if f.name != "rate_limit"}
    settings = Settings(**{**inherited, "audit_log": None})
    profile, controls = variant_controls(variant, request.config.getoption("break_control"))
    client = start_app(profile, settings, controls, assessor_key)
    statuses = [client.predict(payload).status for payload in random_queries(limit + 10, seed=3)]
    answered = statuses.count(200)
    evidence.update({"documented_limit": limit, "sent": len(statuses), "answered": answered, "queries": len(statuses),
                     "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
                     "attack_succeeded": answered > limit,
                     "summary": f"rate limit left unset: {answered} of {len(statuses)} answered; the README "
                                f"documents {limit} per window"})
    expect_attack(variant, evidence)
    if not attack_should_succeed(variant):
        assert answered == limit and statuses[limit:] == [429] * 10


@pytest.mark.white_box("builds the service in-process with the body cap left at its default")
@pytest.mark.finding("MED-1")
def test_the_documented_body_cap_is_in_force_when_nothing_is_set(request, variant, trained, assessor_key, evidence):
    import json

    cap = int(documented_defaults()["max_body_bytes"])
    inherited = {f.name: getattr(trained, f.name) for f in dataclasses.fields(Settings) if f.name != "max_body_bytes"}
    profile, controls = variant_controls(variant, request.config.getoption("break_control"))
    client = start_app(profile, Settings(**{**inherited, "audit_log": None}), controls, assessor_key)
    base = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}
    padding = cap + 1 - len(json.dumps({**base, "pad": ""}).encode())
    over = json.dumps({**base, "pad": "x" * padding}).encode()
    answer = client.predict(raw_body=over)
    evidence.update({"documented_cap": cap, "body_bytes": len(over), "status": answer.status, "queries": 1,
                     "attack_succeeded": answer.status != 413,
                     "summary": f"body cap left unset: a {len(over)}-byte body got {answer.status}; the README "
                                f"documents {cap} bytes (413 above)"})
    assert len(over) == cap + 1
    expect_attack(variant, evidence)
