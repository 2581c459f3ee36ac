"""MED-3: poison the training data, then measure what the poisoned model misses on clean data.

Two attacks at several rates (shares of the training set): random label flips, and injection of
fraud-shaped rows labelled legitimate. Each poisoned set is offered to the data gate and, where the
gate is off or lets it through, trained on and scored on the clean held-out fifth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import precision_score, recall_score

from fraudpipe import data_gate
from fraudpipe.data import FEATURE_NAMES, LABEL, generate_transactions
from fraudpipe.model import fit_arrays, split

RATES = (0.01, 0.05, 0.10)


def label_flip(train: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    poisoned = train.copy()
    rows = rng.choice(len(train), size=round(rate * len(train)), replace=False)
    poisoned.iloc[rows, poisoned.columns.get_loc(LABEL)] = 1 - poisoned[LABEL].to_numpy()[rows]
    return poisoned


def inject(train: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """Fraud-shaped rows labelled legitimate: teaches the model that night-time fraud is normal."""
    n = round(rate * len(train))
    fake = generate_transactions(max(2 * n, 40), fraud_rate=0.5, seed=seed)
    fake = fake[fake[LABEL] == 1].head(n).assign(**{LABEL: 0})
    return pd.concat([train, fake], ignore_index=True)


def _score(train: pd.DataFrame, X_test: np.ndarray, y_test: np.ndarray) -> dict:
    scaler, forest = fit_arrays(train[list(FEATURE_NAMES)].to_numpy(float), train[LABEL].to_numpy(), n_jobs=1)
    predicted = forest.predict(scaler.transform(X_test))
    return {"recall": float(recall_score(y_test, predicted)),
            "precision": float(precision_score(y_test, predicted, zero_division=0))}


def poison_training(gate_on: bool, seed: int = 42) -> dict:
    clean = generate_transactions(seed=seed)
    X_train, X_test, y_train, y_test = split(clean, seed)
    train = pd.DataFrame(X_train, columns=list(FEATURE_NAMES)).astype(clean.dtypes.drop(LABEL).to_dict())
    train[LABEL] = y_train
    reference = data_gate.profile(train)
    baseline = _score(train, X_test, y_test)
    results = []
    for attack, poison in (("label flip", label_flip), ("injection", inject)):
        for rate in RATES:
            poisoned = poison(train, rate, seed + int(rate * 1000))
            gate = data_gate.check(poisoned, reference)
            accepted = gate.passed or not gate_on
            row = {"attack": attack, "rate": rate, "gate_passed": gate.passed,
                   "label_disagreement": round(gate.disagreement, 4), "trained": accepted,
                   "gate_problems": gate.problems[:2]}
            if accepted:
                row.update(_score(poisoned, X_test, y_test))
            results.append(row)
    accepted = [r for r in results if r["trained"]]
    worst = min(accepted, key=lambda r: r["recall"]) if accepted else None
    worst_precision = min(accepted, key=lambda r: r["precision"]) if accepted else None
    clean_gate = data_gate.check(train, reference)
    return {
        "gate": "on" if gate_on else "off",
        "clean_recall": baseline["recall"], "clean_precision": baseline["precision"],
        "clean_data_passes_gate": clean_gate.passed,
        "poisoned_sets": results,
        "accepted_into_training": len(accepted),
        "worst_recall": worst,
        "worst_precision": worst_precision,
        "charts": [{"kind": "line", "title": "Recall on clean data after poisoning", "xlabel": "poisoned share of training rows",
                    "ylabel": "recall", "series": {attack: [[r["rate"] for r in results if r["attack"] == attack],
                                                            [r.get("recall") for r in results if r["attack"] == attack]]
                                                   for attack in ("label flip", "injection")}}] if accepted else [],
        "attack_succeeded": bool(accepted),
        "summary": (f"{len(accepted)} of {len(results)} poisoned training sets accepted (gate {'on' if gate_on else 'off'})"
                    + (f"; worst recall: {worst['attack']} at {worst['rate']:.0%} cut it from {baseline['recall']:.3f} "
                       f"to {worst['recall']:.3f}; worst precision: {worst_precision['attack']} at "
                       f"{worst_precision['rate']:.0%} cut it from {baseline['precision']:.3f} to "
                       f"{worst_precision['precision']:.3f}" if worst else "")),
    }
