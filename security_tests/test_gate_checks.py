"""MED-3, each data-gate check on its own: a set only that check can see must be refused by it."""

import pytest

from security_tests.attacks.gate_checks import CASES, gate_case
from security_tests.contract import Evidence, expect_attack


@pytest.mark.white_box("training-time control: train runs the data gate")
@pytest.mark.finding("MED-3")
@pytest.mark.parametrize("case", list(CASES))
def test_each_gate_check_refuses_what_only_it_can_see(variant, case, evidence):
    found = evidence.record(gate_case(case, gate_on=variant.control_on("data_gate")))
    assert found.details["clean_passes"], f"the gate must accept clean data: {found.details['clean_problems']}"
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.details["checks_that_fired"] == [found.details["check"]], "caught by its own check alone"


@pytest.mark.white_box("training-time control: train runs the data gate")
@pytest.mark.finding("MED-3")
def test_train_refuses_poisoned_rows_by_default(variant, trained, tmp_path, evidence):
    """Through ``train`` itself, with its default arguments where the gate is on: a gate that exists but is
    no longer called (or is off by default) is as good as none."""
    from fraudpipe.data import generate_transactions
    from fraudpipe.errors import DataValidationError
    from fraudpipe.pipeline import train
    from security_tests.attacks.gate_checks import ROWS, labels_swapped

    options = {} if variant.control_on("data_gate") else {"validate_data": False}
    poisoned = labels_swapped(generate_transactions(ROWS, seed=43))
    try:
        train(trained.with_overrides(artifacts_dir=tmp_path / "model"), frame=poisoned, progress=lambda _: None,
              **options)
        outcome = "trained"
    except DataValidationError as exc:
        outcome = f"refused: {exc}"
    written = (tmp_path / "model").exists()
    found = evidence.record(Evidence(
        attack_succeeded=outcome == "trained" and written, queries=0,
        summary=f"train on 10 + 10 swapped labels with {options or 'default arguments'}: {outcome[:160]}",
        details={"outcome": outcome, "artifacts_written": written}))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert not written, "a refused training run must write nothing"
