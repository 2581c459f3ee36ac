import json

import numpy as np

from fraudpipe.artifacts import METRICS_FILE, load_artifacts
from fraudpipe.compiled import boundary_stress_set


def test_metrics_are_computed_on_the_held_out_fifth(trained):
    metrics = json.loads((trained.artifacts_dir / METRICS_FILE).read_text())
    cm = metrics["confusion_matrix"]
    assert metrics["test_rows"] == 2000 == sum(cm.values())
    assert cm["tp"] + cm["fn"] == 100
    for key in ("roc_auc", "pr_auc", "precision", "recall"):
        assert 0.0 <= metrics[key] <= 1.0


def test_serving_forest_matches_scikit_learn_bit_for_bit_including_at_every_threshold(trained):
    loaded = load_artifacts(trained.artifacts_dir, trained.trusted_key)
    from fraudpipe.data import feature_matrix, generate_transactions

    X = feature_matrix(generate_transactions(2_000, seed=5))
    stress = np.vstack([boundary_stress_set(loaded.compiled, row) for row in X[:5]])
    for rows in (X, stress):
        scaled = loaded.scaler.transform(rows)
        labels, proba = loaded.compiled.predict(rows)
        assert np.array_equal(proba, loaded.forest.predict_proba(scaled)[:, 1])
        assert np.array_equal(labels, loaded.forest.predict(scaled))
        one_by_one = [loaded.compiled.predict_one(row) for row in rows]  # the serving path
        assert [label for label, _ in one_by_one] == labels.tolist()
        assert np.array_equal(np.array([p for _, p in one_by_one]), proba)
    assert len(stress) > 100
