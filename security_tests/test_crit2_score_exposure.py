"""CRIT-2 — the score is exposed in the answer: no field, header, length or status page may vary with the
score within a label, and boundary probing measures what labels alone still teach. The same tests run
in-process (inherited, hardened, hardened without ``hide_probability``) and against a live target."""

import numpy as np
import pytest

from security_tests.attacks.score_exposure import (PER_LABEL, probe_boundaries, score_in_any_answer, score_leak,
                                                   spread_in_feature_space)
from security_tests.contract import expect_attack
from security_tests.generated_inputs import IN_PROCESS_EXAMPLES, LIVE_EXAMPLES
from security_tests.markers import runs
from security_tests.reach import require
from security_tests.target import live_target
from security_tests.targets.profile import fraudpipe_target


@pytest.mark.finding("CRIT-2")
@runs(probe_boundaries)
def test_responses_carry_no_probability_to_calibrate_probing(variant, target, evidence):
    reach = target(rate_limit="1000/minute")
    found = evidence.record(probe_boundaries(reach.client(), reach.profile))
    if reach.live:
        require(not found.details["blocked"], "not assessed: probing was refused, so the measurement is incomplete")
    assert not found.details["blocked"], "probing was refused, so the boundary measurement is incomplete"
    expect_attack(variant, found)
    searches = {name: f["label_only_search"] for name, f in found.details["features"].items()}
    for name, search in searches.items():
        if search["flipped"]:
            assert search["queries"] <= 2 * search["log2_range_over_tolerance"] + 2, (name, search)
    if reach.profile.own_service:
        assert searches["hour_of_day"]["flipped"], "labels alone must find where the hour flips the label"


def _victim_spread(trained, per_label: int = PER_LABEL) -> tuple[list[dict], dict]:
    """White-box row choice: the victim's own probabilities pick rows as far apart as the model allows
    within each label (generator rows look like traffic, uniform rows reach probabilities near 0.5)."""
    from fraudpipe.artifacts import load_artifacts
    from fraudpipe.data import FEATURE_NAMES, generate_transactions

    profile = fraudpipe_target()
    compiled = load_artifacts(trained.artifacts_dir, trained.trusted_key, pickles=False).compiled
    frame = generate_transactions(1500, seed=31)
    rng = np.random.default_rng(31)
    uniform = np.column_stack([rng.uniform(*spec.typical_range, 1500) for spec in profile.fields])
    rows = np.vstack([frame[list(FEATURE_NAMES)].to_numpy(float),
                      np.array([profile.vector(profile.row(r)) for r in uniform], dtype=float)])
    labels, probabilities = (np.asarray(a) for a in compiled.predict(rows))
    chosen, spread = [], {}
    for label in (0, 1):
        index = np.flatnonzero(labels == label)
        distinct, first = np.unique(np.round(probabilities[index], 4), return_index=True)
        picks = first[np.unique(np.linspace(0, len(distinct) - 1, min(per_label, len(distinct))).round().astype(int))]
        chosen.extend(profile.row(rows[index[i]]) for i in picks)
        spread[str(label)] = sorted({round(float(probabilities[index[i]]), 4) for i in picks})
    return chosen, spread


@pytest.fixture(scope="session")
def spread_rows(request):
    """Rows whose scores differ widely within each label: chosen with the victim model in-process, spread
    over the profile's ranges against a live target."""
    target = live_target(request.config)
    if target is not None:
        return spread_in_feature_space(target.profile), None
    return _victim_spread(request.getfixturevalue("trained"))


@pytest.mark.finding("CRIT-2")
@runs(score_leak)
def test_no_part_of_an_answer_varies_with_the_score(variant, target, spread_rows, evidence):
    reach = target(rate_limit="1000/minute")
    rows, spread = spread_rows
    found = evidence.record(score_leak(reach.client(), reach.profile, rows))
    found.details["probabilities_per_label"] = spread
    answered = min(found.measurements["answers_negative"], found.measurements["answers_positive"])
    if reach.live:
        require(found.attack_succeeded or (found.details["refused_statuses"] == [] and answered >= 2),
                f"not assessed: the comparison needs every input answered and several answers of each label "
                f"(refused {found.details['refused_statuses']}, labels {found.details['labels_seen']})")
    else:  # fraudpipe in-process: the rows were chosen to be answered, with several of each label
        assert found.details["refused_statuses"] == [], "every input must be answered for the comparison"
        assert answered >= 2, "both labels need several answers"
    if spread is not None:
        assert max(len(values) for values in spread.values()) >= 4, "the rows must differ in probability"
    expect_attack(variant, found)


@pytest.mark.finding("CRIT-2")
@runs(score_in_any_answer)
def test_no_answer_carries_a_probability(variant, target, evidence):
    """Valid, near-valid and arbitrary JSON bodies: no answer, refusals included, carries a score."""
    reach = target(rate_limit="100000/minute")
    examples = LIVE_EXAMPLES if reach.live else IN_PROCESS_EXAMPLES
    found = evidence.record(score_in_any_answer(reach.client(), reach.profile, examples))
    expect_attack(variant, found)
