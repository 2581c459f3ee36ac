"""The data-validation gate in front of training: schema, ranges, drift, label consistency.

Poisoned training data is refused before it can move the model. Drift is measured against a
reference profile recorded in a trusted manifest; label consistency is the share of rows whose label a
cross-validated model disagrees with, which is near zero for this data and rises with every flipped
or injected label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import cross_val_predict
from sklearn.tree import DecisionTreeClassifier

from fraudpipe.data import FEATURE_NAMES, FEATURES, LABEL

MAX_DISAGREEMENT = 0.002
MAX_FRAUD_RATE_SHIFT = 0.01
MAX_MEAN_SHIFT_SIGMAS = 0.25
SAMPLING_Z = 5.0


@dataclass
class GateReport:
    problems: list[str] = field(default_factory=list)
    disagreement: float = 0.0
    profile: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems


def profile(frame: pd.DataFrame) -> dict:
    """What drift is measured against: per-feature mean and standard deviation per class, and the fraud rate."""
    result = {"fraud_rate": float(frame[LABEL].mean()), "rows": int(len(frame)), "features": {}}
    for name in FEATURE_NAMES:
        result["features"][name] = {
            "mean": float(frame[name].mean()), "std": float(frame[name].std(ddof=0)),
            "mean_by_label": {str(k): float(v) for k, v in frame.groupby(LABEL)[name].mean().items()},
        }
    return result


def _class_counts(profile_: dict) -> dict[str, float]:
    fraud = profile_["fraud_rate"] * profile_["rows"]
    return {"0": profile_["rows"] - fraud, "1": fraud}


def check(frame: pd.DataFrame, reference: dict | None = None, seed: int = 0) -> GateReport:
    report = GateReport()
    expected = [*FEATURE_NAMES, LABEL]
    if list(frame.columns) != expected:
        report.problems.append(f"columns {list(frame.columns)} differ from the schema {expected}")
        return report
    if frame.isna().any().any():
        report.problems.append("missing values present")
        return report
    for feature in FEATURES:
        values = frame[feature.name].to_numpy()
        outside = int(sum(not feature.contains(v) for v in np.unique(values)))
        if outside:
            report.problems.append(f"{feature.name}: {outside} distinct values outside the schema's range")
        if feature.kind == "int" and not np.all(np.mod(values, 1) == 0):
            report.problems.append(f"{feature.name}: non-integer values")
    if not set(np.unique(frame[LABEL])) <= {0, 1}:
        report.problems.append("label: values other than 0 and 1")
    if report.problems:
        return report
    report.profile = profile(frame)
    if reference:
        shift = abs(report.profile["fraud_rate"] - reference["fraud_rate"])
        if shift > MAX_FRAUD_RATE_SHIFT:
            report.problems.append(f"fraud rate {report.profile['fraud_rate']:.4f} drifted from the reference "
                                   f"{reference['fraud_rate']:.4f}")
        counts_now = _class_counts(report.profile)
        counts_ref = _class_counts(reference)
        for name, ref in reference["features"].items():
            for label, ref_mean in ref["mean_by_label"].items():
                now = report.profile["features"][name]["mean_by_label"].get(label)
                # a shift must be large in the feature's units and beyond what sampling alone explains
                noise = SAMPLING_Z * ref["std"] * np.sqrt(1 / max(counts_now[label], 1) + 1 / max(counts_ref[label], 1))
                if now is not None and abs(now - ref_mean) > max(MAX_MEAN_SHIFT_SIGMAS * ref["std"], noise):
                    report.problems.append(f"{name}: class {label} mean {now:.3f} drifted from the reference "
                                           f"{ref_mean:.3f}")
    X, y = frame[list(FEATURE_NAMES)].to_numpy(float), frame[LABEL].to_numpy()
    predicted = cross_val_predict(DecisionTreeClassifier(max_depth=4, class_weight="balanced", random_state=seed),
                                  X, y, cv=5)
    report.disagreement = float(np.mean(predicted != y))
    if report.disagreement > MAX_DISAGREEMENT:
        report.problems.append(f"label consistency: {report.disagreement:.2%} of labels disagree with a "
                               f"cross-validated model (limit {MAX_DISAGREEMENT:.2%})")
    return report
