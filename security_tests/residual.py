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


def both_labels_answered(reach, client) -> None:
    """The precondition outside the xfail: the target answers the profile's two examples with the positive
    label and another. In-process a service that does not is a broken setup and fails the run; a live target
    that does not is not assessed."""
    from security_tests.reach import require

    profile = reach.profile
    positive, negative = client.predict(profile.positive_example), client.predict(profile.negative_example)
    answered = positive.ok and negative.ok
    differ = (positive.positive, negative.positive) == (True, False)
    if reach.live:
        require(answered and differ, f"not assessed: the examples were answered {positive.status} {positive.label!r} "
                                     f"and {negative.status} {negative.label!r}, not {profile.positive!r} and another")
    assert answered, f"the service must answer: statuses {positive.status}, {negative.status}"
    assert differ, f"labels must differ: {positive.label}, {negative.label}"
