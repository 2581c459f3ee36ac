"""The one exception a residual-risk test raises when the attack still works on the hardened service.

Residual cases are strict xfails with ``raises=ResidualRiskOpen``: the expected failure is exactly
"the attack still works". Any other failure (the service did not answer, the sample is empty, every
label is the same) is a broken setup and fails the run instead of hiding inside the xfail.
"""

from __future__ import annotations


class ResidualRiskOpen(Exception):
    """The measured attack still succeeds where every control is on."""


def expect_residual(variant: str, evidence: dict) -> None:
    """Where controls are missing the attack must succeed (an assertion); where all are on, an open risk
    raises ``ResidualRiskOpen`` and a fixed one passes (which the strict xfail turns red)."""
    if variant not in ("hardened", "live"):
        assert evidence["attack_succeeded"] is True, f"{variant}: attack should succeed, measured: {evidence['summary']}"
    elif evidence["attack_succeeded"]:
        raise ResidualRiskOpen(evidence["summary"])
