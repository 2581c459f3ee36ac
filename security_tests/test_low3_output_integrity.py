"""LOW-3 — the serving path must agree with the model at its boundary: every row on, just below and just
above a split threshold is answered as scikit-learn answers it. Needs the model's thresholds, so it runs
in-process only."""

import numpy as np
import pytest

from fraudpipe.artifacts import load_artifacts
from fraudpipe.data import feature_matrix, generate_transactions
from security_tests.attacks.output_integrity import float32_graph_labels, serve_boundary_rows, stress_rows
from security_tests.contract import INHERITED
from security_tests.markers import runs
from security_tests.targets.profile import fraudpipe_target


@pytest.mark.white_box("needs the model's split thresholds: compare the deployed service's answers with the model's "
                       "on every threshold and its neighbours")
@pytest.mark.finding("LOW-3")
@runs(serve_boundary_rows)
def test_served_answers_equal_the_model_at_every_split_threshold(trained, start_service, evidence):
    profile = fraudpipe_target()
    loaded = load_artifacts(trained.artifacts_dir, trained.trusted_key)
    bases = [np.array(profile.vector(profile.positive_example)), *feature_matrix(generate_transactions(200, seed=3))[:4]]
    # The inherited profile shares the hardened serving call and accepts the non-integer neighbours of
    # integer thresholds that strict validation would refuse.
    found = evidence.record(serve_boundary_rows(
        start_service(INHERITED), profile, stress_rows(loaded.compiled, bases, profile),
        model=lambda X: loaded.forest.predict(loaded.scaler.transform(X)),
        float32_graph=lambda X: float32_graph_labels(loaded.compiled, X)))
    assert found.measurements["answered"] == found.queries
    assert found.measurements["float32_graph_disagreements"] > 0, \
        "the boundary set must be able to tell a float32 serving path from the model"
    assert not found.attack_succeeded
