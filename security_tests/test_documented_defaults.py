"""The defaults the README documents are the ones in force: the table equals ``Settings()``, and with a
setting left unset the hardened service applies the documented value (rate limit, body cap)."""

import dataclasses
import json

import pytest

from fraudpipe.data import LEGITIMATE_EXAMPLE
from fraudpipe.settings import Settings
from security_tests.attacks.extraction import random_queries
from security_tests.contract import Evidence, expect_attack
from security_tests.documented import documented_defaults, mismatches, per_window


def _left_unset(trained, name: str) -> Settings:
    """The session's settings with one field at its dataclass default (as when nothing sets it), no audit log."""
    kept = {f.name: getattr(trained, f.name) for f in dataclasses.fields(Settings) if f.name != name}
    return Settings(**{**kept, "audit_log": None})


@pytest.mark.white_box("compares the README's settings table with the Settings dataclass")
def test_readme_settings_table_equals_the_settings_defaults():
    documented = documented_defaults()
    assert mismatches(documented, Settings) == {}
    doctored = {**documented, "rate_limit": "1000/minute"}
    assert set(mismatches(doctored, Settings)) == {"rate_limit"}, "the comparison must see a changed default"


@pytest.mark.white_box("builds the service in-process with the rate limit left at its default")
@pytest.mark.finding("HIGH-1")
def test_the_documented_default_limit_is_in_force_when_nothing_is_set(variant, trained, service_app, evidence):
    limit = per_window(documented_defaults()["rate_limit"])
    client = service_app(variant, _left_unset(trained, "rate_limit"))
    statuses = [client.predict(payload).status for payload in random_queries(limit + 10, seed=3)]
    answered = statuses.count(200)
    found = evidence.record(Evidence(
        attack_succeeded=answered > limit, queries=len(statuses),
        summary=f"rate limit left unset: {answered} of {len(statuses)} answered; the README documents {limit} per window",
        measurements={"documented_limit": limit, "answered": answered},
        details={"statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))}}))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert answered == limit and statuses[limit:] == [429] * 10


@pytest.mark.white_box("builds the service in-process with the body cap left at its default")
@pytest.mark.finding("MED-1")
def test_the_documented_body_cap_is_in_force_when_nothing_is_set(variant, trained, service_app, evidence):
    cap = int(documented_defaults()["max_body_bytes"])
    client = service_app(variant, _left_unset(trained, "max_body_bytes"))
    padding = cap + 1 - len(json.dumps({**LEGITIMATE_EXAMPLE, "pad": ""}).encode())
    over = json.dumps({**LEGITIMATE_EXAMPLE, "pad": "x" * padding}).encode()
    answer = client.predict(raw_body=over)
    assert len(over) == cap + 1
    found = evidence.record(Evidence(
        attack_succeeded=answer.status != 413, queries=1,
        summary=f"body cap left unset: a {len(over)}-byte body got {answer.status}; the README documents {cap} bytes "
                "(413 above)",
        measurements={"documented_cap": cap, "body_bytes": len(over), "status": answer.status}))
    expect_attack(variant, found)
