"""MED-3, each data-gate check on its own: a set only that check can see must be refused by it."""

import pytest

from security_tests.attacks.gate_checks import CASES, gate_case
from security_tests.conftest import attack_should_succeed, expect_attack, variant_controls


@pytest.mark.white_box("training-time control: train runs the data gate")
@pytest.mark.finding("MED-3")
@pytest.mark.parametrize("case", list(CASES))
def test_each_gate_check_refuses_what_only_it_can_see(request, variant, case, evidence):
    profile, controls = variant_controls(variant, request.config.getoption("break_control"))
    evidence.update(gate_case(case, gate_on=profile == "hardened" and controls.get("data_gate", True)))
    assert evidence["clean_passes"], f"the gate must accept clean data: {evidence['clean_problems']}"
    expect_attack(variant, evidence)
    if not attack_should_succeed(variant):
        assert evidence["checks_that_fired"] == [evidence["check"]], "the case must be caught by its own check alone"


@pytest.mark.white_box("training-time control: train runs the data gate")
@pytest.mark.finding("MED-3")
def test_train_refuses_poisoned_rows_by_default(request, variant, trained, tmp_path, evidence):
    """Through ``train`` itself, with its default arguments where the gate is on: a gate that exists but is
    no longer called (or is off by default) is as good as none."""
    from fraudpipe.data import generate_transactions
    from fraudpipe.errors import DataValidationError
    from fraudpipe.pipeline import train
    from security_tests.attacks.gate_checks import ROWS, labels_swapped

    profile, controls = variant_controls(variant, request.config.getoption("break_control"))
    settings = trained.with_overrides(artifacts_dir=tmp_path / "model")
    options = {} if profile == "hardened" and controls.get("data_gate", True) else {"validate_data": False}
    poisoned = labels_swapped(generate_transactions(ROWS, seed=43))
    try:
        train(settings, frame=poisoned, progress=lambda _: None, **options)
        outcome = "trained"
    except DataValidationError as exc:
        outcome = f"refused: {exc}"
    written = (tmp_path / "model").exists()
    evidence.update({"outcome": outcome, "artifacts_written": written, "queries": 0,
                     "attack_succeeded": outcome == "trained" and written,
                     "summary": f"train on 10 + 10 swapped labels with {options or 'default arguments'}: {outcome[:160]}"})
    expect_attack(variant, evidence)
    if not attack_should_succeed(variant):
        assert not written, "a refused training run must write nothing"
