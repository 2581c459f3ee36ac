"""The one exception a residual-risk test raises when the attack still works on the hardened service.

Residual cases are strict xfails with ``raises=ResidualRiskOpen``: the expected failure is exactly
"the attack still works". Any other failure (the service did not answer, the sample is empty, every
label is the same) is a broken setup and fails the run instead of hiding inside the xfail.
"""

from __future__ import annotations

from security_tests.contract import Evidence, Variant, expect_attack


class ResidualRiskOpen(Exception):
    """The measured attack still succeeds where every control is on."""


def expect_residual(variant: Variant, evidence: Evidence) -> None:
    """Where the attack must succeed (inherited) it is asserted; where every control is on, an open risk
    raises ``ResidualRiskOpen`` and a fixed one passes (which the strict xfail turns red)."""
    if variant.attack_should_succeed:
        expect_attack(variant, evidence)
    elif evidence.attack_succeeded:
        raise ResidualRiskOpen(evidence.summary)
