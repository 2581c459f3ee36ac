"""LOW-3: does the serving path answer exactly like the model on rows placed at every split threshold?"""

from __future__ import annotations

import numpy as np

from fraudpipe.compiled import boundary_stress_set
from fraudpipe.data import FEATURE_NAMES
from security_tests.attacks.client import Client
from security_tests.contract import Evidence


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


def stress_rows(compiled, bases: list[np.ndarray]) -> np.ndarray:
    """The neighbours of every split threshold around each base row, finite and with a positive amount."""
    stress = np.unique(np.vstack([boundary_stress_set(compiled, base) for base in bases]), axis=0)
    return stress[[all(np.isfinite(r)) and r[0] > 0 for r in stress]]


def serve_boundary_rows(client: Client, loaded, stress: np.ndarray) -> Evidence:
    """Send every stress row; the attack succeeds if any answer differs from scikit-learn's on the same row."""
    expected = loaded.forest.predict(loaded.scaler.transform(stress))
    served, answered = [], 0
    for row in stress:
        answer = client.predict({name: float(v) for name, v in zip(FEATURE_NAMES, row)})
        answered += answer.ok
        served.append(answer.label)
    api_disagree = int(sum(s != e for s, e in zip(served, expected)))
    f32_disagree = int(np.sum(float32_graph_labels(loaded.compiled, stress) != expected))
    return Evidence(
        attack_succeeded=api_disagree > 0, queries=len(stress),
        summary=(f"{api_disagree} of {len(stress)} boundary rows served differently from scikit-learn; "
                 f"the same forest as a float32 graph disagrees on {f32_disagree}"),
        measurements={"boundary_rows": int(len(stress)), "answered": answered, "api_disagreements": api_disagree,
                      "float32_graph_disagreements": f32_disagree})
