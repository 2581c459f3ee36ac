"""CRIT-2 across its whole family: no field, header or length of an answer varies with the score within a label."""

import pytest

from security_tests.attacks.score_leak import score_leak, spread_in_feature_space, victim_spread
from security_tests.contract import expect_attack
from security_tests.target import live_target


@pytest.fixture(scope="session")
def spread_rows(request):
    """Rows whose probabilities differ widely within each label (chosen with the victim model in-process)."""
    if live_target(request.config) is not None:
        return spread_in_feature_space(), None
    from fraudpipe.artifacts import load_artifacts

    trained = request.getfixturevalue("trained")
    return victim_spread(load_artifacts(trained.artifacts_dir, trained.trusted_key, pickles=False).compiled)


@pytest.mark.finding("CRIT-2")
def test_no_part_of_an_answer_varies_with_the_score(variant, start_service, spread_rows, evidence):
    rows, spread = spread_rows
    found = evidence.record(score_leak(start_service(variant, rate_limit="1000/minute"), rows))
    found.details["probabilities_per_label"] = spread
    assert found.details["refused_statuses"] == [], "every transaction must be answered for the comparison"
    assert min(found.measurements["answers_legitimate"], found.measurements["answers_fraud"]) >= 2, \
        "both labels need several answers"
    if spread is not None:
        assert max(len(values) for values in spread.values()) >= 4, "the rows must differ in probability"
    expect_attack(variant, found)
