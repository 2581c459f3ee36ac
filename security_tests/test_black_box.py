"""The black-box findings against a live target, from its profile alone (deselected in-process, where
the in-process tests of the same findings run with every variant). Collection order is the order the
query plan allocates in: cheap checks first, then the tests that need a whole untouched window."""

import pytest

from security_tests.attacks.black_box_evasion import boundary_evasion
from security_tests.attacks.black_box_limits import extraction
from security_tests.black_box_needs import HOLDOUT, UNPROMISED_WINDOW
from security_tests.contract import expect_attack
from security_tests.residual import expect_residual

pytestmark = pytest.mark.black_box


@pytest.mark.finding("HIGH-4")
def test_one_window_of_labels_does_not_buy_a_faithful_copy(variant, live, evidence):
    budget = live.budget("HIGH-4")
    window = live.profile.rate_limit or UNPROMISED_WINDOW
    attacker = budget.fresh() if live.profile.rate_limit else budget.client()
    found = evidence.record(live.measure(lambda: extraction(
        attacker, budget.client(), live.profile, window, min(HOLDOUT[1], budget.shared_queries() - (
            0 if live.profile.rate_limit else window)))))
    expect_residual(variant, found)


@pytest.mark.finding("HIGH-3")
def test_the_positive_example_cannot_be_moved_past_the_boundary(variant, live, evidence):
    budget = live.budget("HIGH-3")
    found = evidence.record(live.measure(lambda: boundary_evasion(budget.client(), live.profile)))
    expect_residual(variant, found)
