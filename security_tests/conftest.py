"""Fixtures of the assessment: artifacts trained once per session, and services built per variant.

A variant is ``inherited``, ``hardened`` or ``hardened-without-<control>``: each finding runs all
three, so a test shows the attack succeeding where the control is missing and failing where it is on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudpipe.serving.app import CONTROL_NAMES, create_app
from security_tests.attacks.client import FlaskClient, HttpClient
from security_tests.findings import finding
from security_tests.residual import ResidualRiskOpen
from security_tests.target import live_target


def variants(finding_id: str, live: bool = False) -> list:
    """The three ways a finding runs, with ids that read ``CRIT-1[hardened-without-auth]``.

    A residual finding has no control to switch off: it runs inherited and hardened, and its hardened
    case is a strict xfail that asserts the fix, so CI turns red the day the behaviour changes.
    """
    item = finding(finding_id)
    if live:
        marks = [_residual_xfail(finding_id, item.title)] if item.residual else []
        return [pytest.param("live", id=f"{finding_id}[live]", marks=marks)]
    if item.residual:
        return [pytest.param("inherited", id=f"{finding_id}[inherited]"),
                pytest.param("hardened", id=f"{finding_id}[hardened]", marks=_residual_xfail(finding_id, item.title))]
    names = ["inherited", "hardened", f"hardened-without-{item.control}"]
    return [pytest.param(name, id=f"{finding_id}[{name}]") for name in names]


def _residual_xfail(finding_id: str, title: str):
    """Only ``ResidualRiskOpen`` is the expected failure; a broken setup fails loudly."""
    return pytest.mark.xfail(strict=True, raises=ResidualRiskOpen, reason=f"{finding_id} open residual risk: {title}")


def variant_controls(variant: str, broken: str | None = None) -> tuple[str, dict]:
    """Profile and control overrides; ``broken`` (``--break-control``) sabotages the hardened variant."""
    if variant.startswith("hardened-without-"):
        return "hardened", {variant.removeprefix("hardened-without-"): False}
    if variant == "hardened" and broken:
        return "hardened", {broken: False}
    return variant, {}


def start_app(profile: str, settings, controls: dict, api_key: str) -> FlaskClient:
    """The app for a variant; overrides that are not service controls (the training gate) stay out."""
    off = {name for name, on in controls.items() if name in CONTROL_NAMES and on is False}
    return FlaskClient(create_app(profile, settings=settings, controls_off=off), api_key=api_key)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes ``variant`` runs each way its finding defines (or once, ``live``)."""
    marker = metafunc.definition.get_closest_marker("finding")
    if "variant" in metafunc.fixturenames and marker is not None:
        metafunc.parametrize("variant", variants(marker.args[0], live=live_target(metafunc.config) is not None))


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if live_target(config) is None:
        return
    for item in items:
        if item.get_closest_marker("assessment_context"):
            continue
        white_box = item.get_closest_marker("white_box")
        if white_box is not None:
            item.add_marker(pytest.mark.skip(reason=f"live target, check by hand: {white_box.args[0]}"))
        elif item.get_closest_marker("finding") is None:
            item.add_marker(pytest.mark.skip(reason="switches controls off in-process; not run against a live target"))


def attack_should_succeed(variant: str) -> bool:
    return variant not in ("hardened", "live")


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
def start_service(request, trained, assessor_key, audit_path):
    """Build a fresh app for a variant (fresh limiter counts) and return a client holding the assessor's key.

    Against a live target the variant is ``live`` and the settings cannot be changed: the client talks
    to the running service with the next API key and loopback source address.
    """
    target = live_target(request.config)

    def start(variant: str, **settings_overrides):
        if target is not None:
            key, source = target.next_identity()
            return HttpClient(target.url, api_key=key, source_address=source)
        profile, controls = variant_controls(variant, request.config.getoption("break_control"))
        settings = trained.with_overrides(audit_log=audit_path, **settings_overrides)
        return start_app(profile, settings, controls, assessor_key)

    return start


@pytest.fixture(scope="session")
def holdout(request):
    """Held-out transactions the attacker never sends, labelled by the victim model itself (in-process),
    or by the generator's ground truth against a live target whose model the assessor cannot read."""
    import numpy as np

    from fraudpipe.artifacts import load_artifacts
    from fraudpipe.data import LABEL, feature_matrix, generate_transactions

    frame = generate_transactions(2_000, seed=2024)
    X = feature_matrix(frame)
    if live_target(request.config) is not None:
        return X, frame[LABEL].to_numpy()
    trained = request.getfixturevalue("trained")
    labels, _ = load_artifacts(trained.artifacts_dir, trained.trusted_key, pickles=False).compiled.predict(X)
    return X, np.asarray(labels)


@pytest.fixture
def start_on_folder(request, variant, trained, assessor_key):
    """Start the variant's service on another artifact folder (a tampered copy), no audit log."""
    profile, controls = variant_controls(variant, request.config.getoption("break_control"))

    def start(folder: Path) -> FlaskClient:
        return start_app(profile, trained.with_overrides(artifacts_dir=folder, audit_log=None), controls, assessor_key)

    return start
