"""HIGH-4 — label-only extraction inside one rate-limit window, a residual risk: one window of label-only
answers buys a copy of the model that agrees with the target on held-out inputs it never sent. The hardened
(and live) cases are strict xfails that expect exactly ``ResidualRiskOpen``; a run whose answers hold one label
is *not assessed (inconclusive)*, never "not reproduced"."""

import pytest

from security_tests.attacks.extraction import CURVE_QUERIES, HOLDOUT, UNPROMISED_WINDOW, extraction
from security_tests.markers import runs
from security_tests.residual import both_labels_answered, expect_residual

LIMIT = 100
"""In-process, the limit fraudpipe's profile promises."""


@pytest.mark.finding("HIGH-4")
@runs(extraction)
def test_one_rate_limit_window_does_not_buy_a_faithful_copy(variant, target, evidence):
    reach = target(rate_limit=f"{LIMIT}/minute")
    profile = reach.profile
    window = profile.rate_limit or UNPROMISED_WINDOW
    if not reach.live:
        both_labels_answered(reach, reach.fresh())
    attacker = reach.fresh() if profile.rate_limit else reach.client()
    holdout = min(HOLDOUT[1], reach.shared_queries() - (0 if profile.rate_limit else window))
    found = evidence.record(extraction(attacker, reach.client(), profile, window, holdout,
                                       curve_queries=0 if reach.live else CURVE_QUERIES))
    measured = found.measurements
    assert measured["holdout_positive_rows"] > 0 and measured["holdout_negative_rows"] > 0, "the hold-out needs both labels"
    assert measured["window_answers_positive"] > 0 and measured["window_answers_negative"] > 0, \
        "the window's answers hold one label only"
    if not reach.live:
        assert measured["answered_in_window"] == window, "the service must answer one full window"
    expect_residual(variant, found)
