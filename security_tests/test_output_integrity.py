import numpy as np
import pytest

from fraudpipe.artifacts import load_artifacts
from fraudpipe.data import FEATURE_NAMES, FRAUD_EXAMPLE, feature_matrix, generate_transactions
from security_tests.attacks.boundary import serve_boundary_rows, stress_rows
from security_tests.contract import INHERITED


@pytest.mark.white_box("needs the model's split thresholds; compare the deployed service with scikit-learn by hand")
@pytest.mark.finding("LOW-3")
def test_served_answers_equal_the_model_at_every_split_threshold(trained, start_service, evidence):
    loaded = load_artifacts(trained.artifacts_dir, trained.trusted_key)
    bases = [np.array([FRAUD_EXAMPLE[name] for name in FEATURE_NAMES], dtype=float),
             *feature_matrix(generate_transactions(200, seed=3))[:4]]
    # The inherited profile shares the hardened serving call and accepts the non-integer neighbours of
    # integer thresholds that strict validation would refuse.
    found = evidence.record(serve_boundary_rows(start_service(INHERITED), loaded, stress_rows(loaded.compiled, bases)))
    assert found.measurements["answered"] == found.queries
    assert found.measurements["float32_graph_disagreements"] > 0, \
        "the boundary set must be able to tell a float32 serving path from the model"
    assert not found.attack_succeeded
