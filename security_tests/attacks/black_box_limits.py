"""Black-box HIGH-4 (what one window of label-only answers buys an extractor), from a target profile alone.

It needs a window nobody else spent: the plan gives it its own key and source address. A first request
that is already refused means the window was not fresh, which is reported not assessed.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.tree import DecisionTreeClassifier

from security_tests.targets.profile import TargetProfile
from security_tests.attacks.client import require_answer
from security_tests.attacks.schema_inputs import random_rows
from security_tests.contract import Evidence, NotAssessed

EXTRACTION_THRESHOLD = 0.85


def _matrix(profile: TargetProfile, rows: list[dict]) -> np.ndarray:
    return np.array([profile.vector(r) for r in rows], dtype=float)


def _surrogate(X: np.ndarray, y: np.ndarray):
    """The attacker's own choice between a tree and a linear model, by cross-validation on its answers."""
    candidates = {"decision tree": DecisionTreeClassifier(random_state=0),
                  "logistic regression": make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=2000))}
    if min(np.bincount(y)) >= 3:
        scores = {n: cross_val_score(m, X, y, cv=3).mean() for n, m in candidates.items()}
        name = max(scores, key=scores.get)
    else:
        name = "decision tree"
    return name, candidates[name].fit(X, y)


def _labels(client, profile: TargetProfile, rows: list[dict]) -> tuple[list[dict], list[bool]]:
    kept, labels = [], []
    for row in rows:
        answer = client.predict(row)
        if answer.ok:
            kept.append(row)
            labels.append(bool(answer.positive))
    return kept, labels


def extraction(attacker, assessor, profile: TargetProfile, window: int, holdout: int) -> Evidence:
    """``window`` random in-range label-only queries by the attacker; fidelity on ``holdout`` other random
    rows labelled by the target, as balanced accuracy against the always-majority baseline."""
    first = attacker.predict(profile.negative_example)
    if first.status == 429:
        raise NotAssessed("not assessed (budget): the extractor's planned fresh window was already spent")
    require_answer(first, "the extractor's first request")
    rows, labels = _labels(attacker, profile, random_rows(profile, window - 1, seed=21))
    held_rows, truth = _labels(assessor, profile, random_rows(profile, holdout, seed=2024))
    truth = np.array(truth, dtype=int)
    if len(held_rows) < holdout * 0.8 or len(set(truth)) < 2:
        raise NotAssessed(f"not assessed: {len(held_rows)} of {holdout} held-out rows answered, labels "
                          f"{sorted(set(truth.tolist()))}; fidelity cannot be told from the majority baseline")
    y = np.array(labels, dtype=int)
    majority = int(np.bincount(truth).argmax())
    majority_agreement = float(np.mean(truth == majority))
    if len(set(y)) < 2:
        name, predicted = "constant (one label answered)", np.full(len(truth), y[0] if len(y) else majority)
    else:
        name, model = _surrogate(_matrix(profile, rows), y)
        predicted = model.predict(_matrix(profile, held_rows))
    balanced = float(balanced_accuracy_score(truth, predicted))
    agreement = float(np.mean(predicted == truth))
    return Evidence(
        attack_succeeded=balanced >= EXTRACTION_THRESHOLD and agreement > majority_agreement,
        queries=window + holdout,
        summary=(f"a {name} surrogate trained on {len(rows)} label-only answers from one window of {window} "
                 f"agrees with the target on {agreement:.1%} of {len(held_rows)} held-out rows (balanced accuracy "
                 f"{balanced:.1%}; always-majority agrees on {majority_agreement:.1%}, balanced 50%)"),
        residual=(f"one rate-limit window ({window} label-only queries) buys a copy with balanced accuracy "
                  f"{balanced:.1%} against the target (always-majority 50%)"),
        measurements={"answered_in_window": len(rows) + 1, "limit_per_window": window,
                      "balanced_accuracy": round(balanced, 4), "agreement": round(agreement, 4),
                      "majority_agreement": round(majority_agreement, 4), "holdout_rows": len(held_rows),
                      "threshold_balanced_accuracy": EXTRACTION_THRESHOLD},
        details={"surrogate": name, "positive_share_in_holdout": round(float(np.mean(truth)), 4),
                 "positive_share_in_window": round(float(np.mean(y)), 4) if len(y) else None})
