"""What an answer shows. The acquired service returned the fraud probability, which lets a caller read
the decision boundary directly; ``hide_probability`` answers with the label alone."""

from __future__ import annotations


def with_probability(label: int, probability: float) -> dict:
    return {**label_only(label, probability), "fraud_probability": round(probability, 4)}


def label_only(label: int, probability: float) -> dict:
    return {"prediction": label, "label": "FRAUD" if label == 1 else "LEGITIMATE"}


def install(app, service) -> None:
    service.render = label_only
