"""LOW-3: does the serving path answer exactly like the model on rows placed at every split threshold?

A serving path rebuilt for speed (compiled arrays, another runtime, float32) can disagree with the model it
was built from only where a row sits on a threshold, so the rows go there: on, just below and just above
every split of the forest. The attack takes the model and a float32 graph of it as callables over rows:
the first is what the service must answer, the second must disagree somewhere, or the rows could not tell
a float32 serving path from the model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fraudpipe.compiled import boundary_stress_set
from security_tests.attacks.client import Client
from security_tests.contract import Evidence
from security_tests.targets.profile import TargetProfile

Labels = Callable[[np.ndarray], np.ndarray]


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


def stress_rows(compiled, bases: list[np.ndarray], profile: TargetProfile) -> np.ndarray:
    """The neighbours of every split threshold around each base row that the profile's ranges accept."""
    stress = np.unique(np.vstack([boundary_stress_set(compiled, base) for base in bases]), axis=0)
    return stress[[all(np.isfinite(r)) and all(f.contains(v) for f, v in zip(profile.fields, r)) for r in stress]]


def serve_boundary_rows(client: Client, profile: TargetProfile, rows: np.ndarray, model: Labels,
                        float32_graph: Labels) -> Evidence:
    """Send every row exactly as computed (no rounding: the neighbours are one float apart); the attack
    succeeds if any answer differs from the model's on the same row (1 = the profile's positive label)."""
    expected = np.asarray(model(rows)).astype(int)
    served, answered = [], 0
    for row in rows:
        answer = client.predict({name: float(v) for name, v in zip(profile.field_names, row)})
        answered += answer.ok
        served.append(int(answer.positive) if answer.ok else None)
    api_disagree = int(sum(s != e for s, e in zip(served, expected)))
    f32_disagree = int(np.sum(np.asarray(float32_graph(rows)) != expected))
    return Evidence(
        attack_succeeded=api_disagree > 0, queries=len(rows),
        summary=(f"{api_disagree} of {len(rows)} boundary rows served differently from the model; "
                 f"the same forest as a float32 graph disagrees on {f32_disagree}"),
        measurements={"boundary_rows": int(len(rows)), "answered": answered, "api_disagreements": api_disagree,
                      "float32_graph_disagreements": f32_disagree})
