"""MED-3, each check of the data gate on its own: a poisoned set that only that check can see.

The existing poisoning attack trips several checks at once, so removing any one of them leaves the
gate refusing it and the suite green. Here each set is built so that the other checks pass: a shift
in one class's amounts with labels still consistent (drift alone), a fraud rate halved (drift alone),
a few out-of-range or mistyped values (schema alone), and a handful of swapped labels that keep the
class sizes and means (label consistency alone).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from fraudpipe import data_gate
from fraudpipe.data import LABEL, generate_transactions
from security_tests.contract import Evidence

ROWS = 4_000
CHECKS = {"schema": ("schema", "range", "non-integer", "missing", "label: values"), "drift": ("drifted",),
          "label consistency": ("label consistency",)}


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
