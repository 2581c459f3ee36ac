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
