"""Fixtures of the assessment: artifacts trained once per session, and services built per variant.

A variant is ``inherited``, ``hardened`` or ``hardened-without-<control>``: each finding runs all
three, so a test shows the attack succeeding where the control is missing and failing where it is on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudpipe.serving.app import create_app
from security_tests.attacks.client import FlaskClient
from security_tests.findings import finding


def variants(finding_id: str) -> list:
    """The three ways a finding runs, with ids that read ``CRIT-1[hardened-without-auth]``.

    A residual finding has no control to switch off: it runs inherited and hardened, and its hardened
    case is a strict xfail that asserts the fix, so CI turns red the day the behaviour changes.
    """
    item = finding(finding_id)
    if item.residual:
        return [pytest.param("inherited", id=f"{finding_id}[inherited]"),
                pytest.param("hardened", id=f"{finding_id}[hardened]", marks=pytest.mark.xfail(
                    strict=True, reason=f"{finding_id} open residual risk: {item.title}"))]
    names = ["inherited", "hardened", f"hardened-without-{item.control}"]
    return [pytest.param(name, id=f"{finding_id}[{name}]") for name in names]


def variant_controls(variant: str) -> tuple[str, dict]:
    if variant.startswith("hardened-without-"):
        return "hardened", {variant.removeprefix("hardened-without-"): False}
    return variant, {}


def attack_should_succeed(variant: str) -> bool:
    return variant != "hardened"


def expect_attack(variant: str, evidence: dict) -> None:
    """The one assertion every finding makes: the attack succeeds exactly where the control is off."""
    expected = attack_should_succeed(variant)
    assert evidence["attack_succeeded"] is expected, (
        f"{variant}: attack {'should succeed' if expected else 'should be blocked'}, "
        f"measured: {evidence['summary']}")


@pytest.fixture
def audit_path(tmp_path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def start_service(trained, assessor_key, audit_path):
    """Build a fresh app for a variant (fresh limiter counts) and return a client holding the assessor's key."""

    def start(variant: str, **settings_overrides) -> FlaskClient:
        profile, controls = variant_controls(variant)
        settings = trained.with_overrides(audit_log=audit_path, **settings_overrides)
        return FlaskClient(create_app(profile, settings=settings, **controls), api_key=assessor_key)

    return start


@pytest.fixture(scope="session")
def holdout(trained):
    """Held-out transactions the attacker never sends, labelled by the victim model itself."""
    import numpy as np

    from fraudpipe.artifacts import load_artifacts
    from fraudpipe.data import feature_matrix, generate_transactions

    X = feature_matrix(generate_transactions(2_000, seed=2024))
    labels, _ = load_artifacts(trained.artifacts_dir, trained.trusted_key, pickles=False).compiled.predict(X)
    return X, np.asarray(labels)
