"""Split, scale, fit and evaluate: the acquired service's training recipe, kept as it was."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import (average_precision_score, classification_report, confusion_matrix,
                             roc_auc_score, roc_curve)
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fraudpipe.data import LABEL, feature_matrix


@dataclass
class TrainedModel:
    scaler: StandardScaler
    forest: RandomForestClassifier
    X_test: np.ndarray
    y_test: np.ndarray
    X_train: np.ndarray
    y_train: np.ndarray


def split(frame: pd.DataFrame, seed: int = 42):
    """Stratified 80/20, so the 5 % fraud class keeps its share in both halves."""
    return train_test_split(feature_matrix(frame), frame[LABEL].to_numpy(), test_size=0.2,
                            stratify=frame[LABEL].to_numpy(), random_state=seed)


def fit_arrays(X_train: np.ndarray, y_train: np.ndarray, seed: int = 42,
               n_jobs: int = -1) -> tuple[StandardScaler, RandomForestClassifier]:
    """Fit on all cores; the forest is then set to one job so each later call pays no thread-pool start."""
    scaler = StandardScaler().fit(X_train)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, class_weight="balanced",
                                    random_state=seed, n_jobs=n_jobs)
    forest.fit(scaler.transform(X_train), y_train)
    forest.set_params(n_jobs=1)
    return scaler, forest


def fit(frame: pd.DataFrame, seed: int = 42, n_jobs: int = -1) -> TrainedModel:
    X_train, X_test, y_train, y_test = split(frame, seed)
    scaler, forest = fit_arrays(X_train, y_train, seed, n_jobs)
    return TrainedModel(scaler, forest, X_test, y_test, X_train, y_train)


def evaluate(model: TrainedModel) -> dict:
    """Metrics for metrics.json; curves are kept apart so the JSON stays small."""
    scaled = model.scaler.transform(model.X_test)
    proba = model.forest.predict_proba(scaled)[:, 1]
    predicted = (proba > 0.5).astype(int)
    tn, fp, fn, tp = confusion_matrix(model.y_test, predicted, labels=[0, 1]).ravel()
    report = classification_report(model.y_test, predicted, labels=[0, 1],
                                   target_names=["legitimate", "fraud"], output_dict=True,
                                   zero_division=0)
    fpr, tpr, _ = roc_curve(model.y_test, proba)
    return {
        "test_rows": int(len(model.y_test)),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "classification_report": report,
        "roc_auc": float(roc_auc_score(model.y_test, proba)),
        "pr_auc": float(average_precision_score(model.y_test, proba)),
        "precision": float(report["fraud"]["precision"]),
        "recall": float(report["fraud"]["recall"]),
        "roc_curve": {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]},
    }
