"""Fixtures of the assessment: services built per variant (see ``security_tests/contract.py``), held-out
rows, the audit log path. Test modules import from the contract and the attacks, never from here."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudpipe.serving.app import create_app
from security_tests.attacks.client import FlaskClient, HttpClient
from security_tests.contract import Variant, variants
from security_tests.findings import FINDINGS, finding
from security_tests.live import Live
from security_tests.residual import ResidualRiskOpen
from security_tests.target import live_target

BLACK_BOX_FINDINGS = tuple(f.id for f in FINDINGS if f.black_box_attack)


def _params(finding_id: str, config: pytest.Config) -> list:
    """The variants of a finding as parameters with ids that read ``CRIT-1[hardened-without-auth]``.

    A residual finding's hardened (or live) case is a strict xfail that asserts the fix, so CI turns red
    the day the behaviour changes.
    """
    item = finding(finding_id)
    xfail = pytest.mark.xfail(strict=True, raises=ResidualRiskOpen,  # a broken setup fails loudly instead
                              reason=f"{finding_id} open residual risk")
    return [pytest.param(v, id=f"{finding_id}[{v.id}]", marks=[xfail] if item.residual and v.judges_fix
                         else []) for v in variants(item, broken=config.getoption("break_control"),
                                                    live=live_target(config) is not None)]


def start_app(variant: Variant, settings, api_key: str) -> FlaskClient:
    return FlaskClient(create_app(variant.profile, settings=settings, controls_off=variant.service_off),
                       api_key=api_key)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes ``variant`` runs each way its finding defines (or once, ``live``)."""
    marker = metafunc.definition.get_closest_marker("finding")
    if "variant" in metafunc.fixturenames and marker is not None:
        metafunc.parametrize("variant", _params(marker.args[0], metafunc.config))


def _runs_here(item, live: bool) -> bool:
    """Live: the black-box tests replace the in-process tests of the same findings; in-process, the
    black-box tests (which need a running target) are left out."""
    if item.get_closest_marker("black_box") is not None:
        return live
    marker = item.get_closest_marker("finding")
    white_box = item.get_closest_marker("white_box") is not None
    return not (live and marker is not None and marker.args[0] in BLACK_BOX_FINDINGS and not white_box)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    live = live_target(config) is not None
    kept = [item for item in items if _runs_here(item, live)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
    if not live:
        return
    for item in items:
        if item.get_closest_marker("assessment_context") or item.get_closest_marker("black_box"):
            continue
        white_box = item.get_closest_marker("white_box")
        if white_box is not None:
            item.add_marker(pytest.mark.skip(reason=f"not assessed (needs the inside), check by hand: "
                                                    f"{white_box.args[0]}"))
        elif item.get_closest_marker("finding") is None:
            item.add_marker(pytest.mark.skip(reason="switches controls off in-process; not run against a live target"))


@pytest.fixture
def service_app(trained, assessor_key):
    """Build the app of a variant over given settings (the artifact-tampering test points it at a copy)."""
    return lambda variant, settings: start_app(variant, settings, assessor_key)


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

    def start(variant: Variant, **settings_overrides):
        if target is not None:
            return HttpClient(target.url, profile=target.profile)
        return start_app(variant, trained.with_overrides(audit_log=audit_path, **settings_overrides), assessor_key)

    return start


@pytest.fixture(scope="session")
def holdout(request):
    """Held-out transactions the attacker never sends, labelled by the victim model itself (in-process;
    against a live target the black-box tests label their own held-out rows through the target)."""
    import numpy as np

    from fraudpipe.artifacts import load_artifacts
    from fraudpipe.data import feature_matrix, generate_transactions

    X = feature_matrix(generate_transactions(2_000, seed=2024))
    trained = request.getfixturevalue("trained")
    labels, _ = load_artifacts(trained.artifacts_dir, trained.trusted_key, pickles=False).compiled.predict(X)
    return X, np.asarray(labels)


@pytest.fixture
def live(request) -> Live:
    """The live target's profile and this test's planned budget (black-box tests only)."""
    target = live_target(request.config)
    if target is None:
        pytest.skip("needs a live target (--target-url or --target-profile)")
    return Live(target, request.session.items)
