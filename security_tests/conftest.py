"""Fixtures of the assessment: the ``target`` each run of a finding reaches (``security_tests/reach.py``:
in-process per variant, or live from the query plan), services built per variant for the tests that need
the inside, held-out rows, the audit log path. Test modules import from the contract, the reach and the
attacks, never from here."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_tests import markers
from security_tests.attacks.client import FlaskClient, HttpClient
from security_tests.contract import LIVE, Variant, variants
from security_tests.findings import finding
from security_tests.reach import InProcessReach, LiveReach, Reach, deployed_app, need_of, plan_name
from security_tests.residual import ResidualRiskOpen
from security_tests.target import live_target, planned
from security_tests.targets.profile import fraudpipe_target


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
    return FlaskClient(deployed_app(variant, settings), api_key=api_key)


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes ``variant`` runs each way its finding defines (or once, ``live``). Against a live
    target a white-box test is one case, not assessed, whatever it is parametrized by in-process: its cases
    are fraudpipe's inside (its files, its training data), not the target's."""
    definition = metafunc.definition
    if live_target(metafunc.config) is not None and markers.white_box_reason(definition) is not None:
        definition.own_markers[:] = [m for m in definition.own_markers if m.name != "parametrize"]
    finding_id = markers.finding_of(metafunc.definition)
    if "variant" in metafunc.fixturenames and finding_id is not None:
        metafunc.parametrize("variant", _params(finding_id, metafunc.config))


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Against a live target, a test runs when its attacks declare what they spend; the others say why not."""
    if live_target(config) is None:
        return
    for item in items:
        if markers.is_context(item) or markers.runs_live(item):
            continue
        white_box = markers.white_box_reason(item)
        if white_box is not None:
            item.add_marker(pytest.mark.skip(reason=f"not assessed (needs the inside), check by hand: {white_box}"))
        elif markers.finding_of(item) is not None:
            item.add_marker(pytest.mark.skip(reason="not assessed: this attack runs in-process only"))
        else:
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


@pytest.fixture
def target(request, variant, trained, assessor_key, audit_path):
    """What this run of a finding reaches: ``target(**settings)`` builds it; in-process the settings change the
    service built for the variant (a live target is as it is: its budget replaces e.g. a raised limit)."""
    live = live_target(request.config)

    def reach(**in_process_settings) -> Reach:
        if live is not None:
            planned(live, request.session.items, lambda item: need_of(item, live.profile))
            return LiveReach(variant, live, plan_name(request.node))
        settings = trained.with_overrides(audit_log=audit_path, **in_process_settings)
        return InProcessReach(variant, settings, assessor_key, fraudpipe_target())

    return reach


@pytest.fixture
def grey_box(request):
    """A grey-box test's reach into the live target (its profile names the target's own files), built when the
    test calls it, so a budget the plan could not give reads *not assessed (budget)*. In-process there is
    nothing of another service to read: fraudpipe's inside is measured by the white-box tests."""
    live = live_target(request.config)
    if live is None:
        pytest.skip("grey-box: runs against a live target whose profile names its log, model folder or environment")

    def reach() -> LiveReach:
        planned(live, request.session.items, lambda item: need_of(item, live.profile))
        return LiveReach(LIVE, live, plan_name(request.node))

    return reach


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
