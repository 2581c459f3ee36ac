import numpy as np
import pytest

from fraudpipe.artifacts import load_artifacts
from fraudpipe.compiled import boundary_stress_set
from fraudpipe.data import FEATURE_NAMES
from security_tests.attacks.probing import SEED_TRANSACTION


def float32_graph_labels(compiled, X: np.ndarray) -> np.ndarray:
    """The same forest evaluated the way a default float32 graph does: scaling and thresholds in float32."""
    f32 = np.float32
    scaled = (X.astype(f32) - compiled.mean.astype(f32)) / compiled.scale.astype(f32)
    thresholds = compiled.threshold.astype(f32)
    rows = np.arange(len(X))[:, None]
    node = np.broadcast_to(compiled.roots, (len(X), len(compiled.roots)))
    for _ in range(int(compiled.depth)):
        left = scaled[rows, compiled.feature[node]] <= thresholds[node]
        node = np.where(left, compiled.left[node], compiled.right[node])
    proba = np.cumsum(compiled.leaf_proba[node], axis=1)[:, -1] / len(compiled.roots)
    return (proba > 0.5).astype(int)


@pytest.mark.white_box("needs the model's split thresholds; compare the deployed service with scikit-learn by hand")
@pytest.mark.finding("LOW-3")
def test_served_answers_equal_the_model_at_every_split_threshold(trained, start_service, evidence):
    loaded = load_artifacts(trained.artifacts_dir, trained.trusted_key)
    from fraudpipe.data import feature_matrix, generate_transactions

    bases = [np.array([SEED_TRANSACTION[name] for name in FEATURE_NAMES], dtype=float),
             *feature_matrix(generate_transactions(200, seed=3))[:4]]
    stress = np.unique(np.vstack([boundary_stress_set(loaded.compiled, base) for base in bases]), axis=0)
    stress = stress[[all(np.isfinite(r)) and r[0] > 0 for r in stress]]
    expected = loaded.forest.predict(loaded.scaler.transform(stress))
    # The inherited profile shares the hardened serving call and accepts the non-integer neighbours of
    # integer thresholds that strict validation would refuse.
    client = start_service("inherited")
    served, answered = [], 0
    for row in stress:
        answer = client.predict({name: float(v) for name, v in zip(FEATURE_NAMES, row)})
        answered += answer.ok
        served.append(answer.label)
    api_disagree = int(sum(s != e for s, e in zip(served, expected)))
    f32_disagree = int(np.sum(float32_graph_labels(loaded.compiled, stress) != expected))
    evidence.update({"boundary_rows": int(len(stress)), "answered": answered, "api_disagreements": api_disagree,
                     "float32_graph_disagreements": f32_disagree,
                     "attack_succeeded": api_disagree > 0,
                     "summary": f"{api_disagree} of {len(stress)} boundary rows served differently from scikit-learn; "
                                f"the same forest as a float32 graph disagrees on {f32_disagree}"})
    assert answered == len(stress)
    assert f32_disagree > 0, "the boundary set must be able to tell a float32 serving path from the model"
    assert api_disagree == 0
