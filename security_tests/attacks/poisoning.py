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
from fraudpipe.data import FEATURE_NAMES, LABEL, Recipe, dataset_sha256, generate_transactions
from fraudpipe.model import fit_arrays, split
from security_tests.contract import Evidence

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


def _poisoned_sets(train: pd.DataFrame, reference, gate_on: bool, X_test, y_test, seed: int) -> list[dict]:
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
    return results


def _summary(results: list[dict], baseline: dict, gate_on: bool) -> str:
    accepted = [r for r in results if r["trained"]]
    text = f"{len(accepted)} of {len(results)} poisoned training sets accepted (gate {'on' if gate_on else 'off'})"
    if not accepted:
        return text
    worst = min(accepted, key=lambda r: r["recall"])
    worst_precision = min(accepted, key=lambda r: r["precision"])
    return (text + f"; worst recall: {worst['attack']} at {worst['rate']:.0%} cut it from {baseline['recall']:.3f} "
            f"to {worst['recall']:.3f}; worst precision: {worst_precision['attack']} at "
            f"{worst_precision['rate']:.0%} cut it from {baseline['precision']:.3f} to "
            f"{worst_precision['precision']:.3f}")


def poison_training(gate_on: bool, seed: int = 42) -> Evidence:
    clean = generate_transactions(seed=seed)
    X_train, X_test, y_train, y_test = split(clean, seed)
    train = pd.DataFrame(X_train, columns=list(FEATURE_NAMES)).astype(clean.dtypes.drop(LABEL).to_dict())
    train[LABEL] = y_train
    reference = data_gate.profile(train)
    baseline = _score(train, X_test, y_test)
    results = _poisoned_sets(train, reference, gate_on, X_test, y_test, seed)
    accepted = [r for r in results if r["trained"]]
    chart = {"kind": "line", "title": "Recall and precision on clean data after poisoning",
             "xlabel": "poisoned share of training rows", "ylabel": "score on clean held-out data", "ylim": [0, 1],
             "series": {f"{attack}: {metric}": [[r["rate"] for r in results if r["attack"] == attack],
                                                [r.get(metric) for r in results if r["attack"] == attack]]
                        for attack in ("label flip", "injection") for metric in ("recall", "precision")}}
    return Evidence(
        attack_succeeded=bool(accepted), queries=0, summary=_summary(results, baseline, gate_on),
        charts=[chart] if accepted else [],
        measurements={"clean_recall": baseline["recall"], "clean_precision": baseline["precision"],
                      "accepted_into_training": len(accepted),
                      "worst_recall": min((r["recall"] for r in accepted), default=None),
                      "worst_precision": min((r["precision"] for r in accepted), default=None)},
        details={"gate": "on" if gate_on else "off", "poisoned_sets": results,
                 "clean_data_passes_gate": data_gate.check(train, reference).passed})


def dataset_provenance(provenance: dict) -> Evidence:
    """Regenerate the data from the signed recipe: the attack succeeds if the signed hash does not match it."""
    signed, recipe = provenance["dataset_sha256"], provenance["recipe"]
    regenerated = dataset_sha256(generate_transactions(**Recipe(**recipe).as_dict()))
    other = dataset_sha256(generate_transactions(**{**recipe, "seed": recipe["seed"] + 1}))
    return Evidence(
        attack_succeeded=regenerated != signed, queries=0,
        summary=(f"signed dataset hash {signed[:16]}… {'matches' if regenerated == signed else 'DIFFERS FROM'} "
                 f"the regenerated data; another seed gives {other[:16]}…"),
        details={"signed_dataset_sha256": signed, "regenerated_sha256": regenerated, "other_seed_sha256": other,
                 "data_gate": provenance["data_gate"]})
