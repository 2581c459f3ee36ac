"""MED-3, the whole family: poison the training data, and see whether the data gate keeps it out of training.

Two attacks. Poisoning at several rates (shares of the training set): random label flips, and injection of
fraud-shaped rows labelled legitimate; each poisoned set is offered to the data gate and, where the gate is
off or lets it through, trained on and scored on the clean held-out fifth. And each check of the gate on
its own: the poisoning sets trip several checks at once, so removing any one of them would leave the gate
refusing them and the suite green; here each set is built so that the other checks pass: a shift in one
class's amounts with labels still consistent (drift alone), a fraud rate halved (drift alone), a few
out-of-range or mistyped values (schema alone), and a handful of swapped labels that keep the class sizes
and means (label consistency alone). The signed dataset hash is checked against the data its recipe
regenerates. Training-time and white-box: this module uses fraudpipe's own data, gate and trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.metrics import precision_score, recall_score

from fraudpipe import data_gate
from fraudpipe.data import FEATURE_NAMES, LABEL, Recipe, dataset_sha256, generate_transactions
from fraudpipe.model import fit_arrays, split
from security_tests.contract import Evidence

RATES = (0.01, 0.05, 0.10)
ROWS = 4_000
CHECKS = {"schema": ("schema", "range", "non-integer", "missing", "label: values"), "drift": ("drifted",),
          "label consistency": ("label consistency",)}


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


def _legit(frame: pd.DataFrame) -> np.ndarray:
    return np.flatnonzero(frame[LABEL].to_numpy() == 0)


def _set(frame: pd.DataFrame, rows, column: str, value) -> pd.DataFrame:
    frame = frame.copy()
    if isinstance(value, float) and frame[column].dtype.kind == "i":
        frame[column] = frame[column].astype(float)
    frame.iloc[rows, frame.columns.get_loc(column)] = value
    return frame


def legit_amounts_shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """Legitimate spending moved up by $60: the hour still separates the classes, so labels stay consistent."""
    frame = frame.copy()
    legit = frame[LABEL] == 0
    frame.loc[legit, "amount"] = (frame.loc[legit, "amount"] + 60).round(2)
    return frame


def fraud_rate_halved(frame: pd.DataFrame) -> pd.DataFrame:
    fraud = np.flatnonzero(frame[LABEL].to_numpy() == 1)
    return frame.drop(frame.index[fraud[: len(fraud) // 2]]).reset_index(drop=True)


def labels_swapped(frame: pd.DataFrame, pairs: int = 10) -> pd.DataFrame:
    """``pairs`` fraud rows relabelled legitimate and as many the other way: sizes kept, means barely moved."""
    y = frame[LABEL].to_numpy().copy()
    fraud, legit = np.flatnonzero(y == 1)[:pairs], np.flatnonzero(y == 0)[:pairs]
    y[fraud], y[legit] = 0, 1
    return frame.assign(**{LABEL: y})


CASES = {
    "drift: legitimate amounts +$60": ("drift", legit_amounts_shifted),
    "drift: fraud rate halved": ("drift", fraud_rate_halved),
    "schema: negative amounts": ("schema", lambda f: _set(f, _legit(f)[:5], "amount", -5.0)),
    "schema: hour 24": ("schema", lambda f: _set(f, _legit(f)[:5], "hour_of_day", 24)),
    "schema: fractional hour": ("schema", lambda f: _set(f, _legit(f)[:5], "hour_of_day", 14.5)),
    "schema: label 2": ("schema", lambda f: _set(f, _legit(f)[:5], LABEL, 2)),
    "schema: column renamed": ("schema", lambda f: f.rename(columns={"amount": "amount_usd"})),
    "label consistency: 10 + 10 labels swapped": ("label consistency", labels_swapped),
}


@lru_cache(maxsize=2)
def _clean(seed: int) -> tuple[dict, pd.DataFrame, data_gate.GateReport]:
    """The reference profile (one seed) and a clean set (the next seed) with its gate report, computed once."""
    reference = data_gate.profile(generate_transactions(ROWS, seed=seed))
    clean = generate_transactions(ROWS, seed=seed + 1)
    return reference, clean, data_gate.check(clean, reference)


def gate_case(name: str, gate_on: bool, seed: int = 42) -> Evidence:
    """One case: the clean set (another seed) passes, the poisoned one is refused by its check, and only that."""
    reference, clean, clean_report = _clean(seed)
    check, poison = CASES[name]
    report = data_gate.check(poison(clean), reference)
    named = {other: any(word in problem for problem in report.problems for word in words)
             for other, words in CHECKS.items()}
    accepted = report.passed or not gate_on
    return Evidence(
        attack_succeeded=accepted, queries=0,
        summary=(f"{name}: {'ACCEPTED into training' if accepted else 'refused'} (gate "
                 f"{'on' if gate_on else 'off'}); problems: {'; '.join(report.problems) or 'none'}"),
        measurements={"label_disagreement": round(report.disagreement, 4)},
        details={"case": name, "check": check, "gate": "on" if gate_on else "off", "clean_passes": clean_report.passed,
                 "clean_problems": clean_report.problems, "problems": report.problems,
                 "checks_that_fired": sorted(k for k, fired in named.items() if fired)})


def train_on_swapped_labels(train: Callable[[pd.DataFrame], object], written: Callable[[], bool],
                            refusal: type[Exception], arguments: str, seed: int = 43) -> Evidence:
    """Through the training job itself: a gate that exists but is no longer called (or is off by default) is
    as good as none. ``train(frame)`` raises ``refusal`` when it refuses; ``written()`` says whether a release
    was written."""
    try:
        train(labels_swapped(generate_transactions(ROWS, seed=seed)))
        outcome = "trained"
    except refusal as exc:
        outcome = f"refused: {exc}"
    release = written()
    return Evidence(
        attack_succeeded=outcome == "trained" and release, queries=0,
        summary=f"train on 10 + 10 swapped labels with {arguments}: {outcome[:160]}",
        details={"outcome": outcome, "artifacts_written": release})
