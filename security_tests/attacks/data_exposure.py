"""LOW-1: does the training data hold personal data, and do the model's answers reveal which rows trained it?

Both attacks take data and callables, not the service: a frame to scan, and ``predict_proba`` over rows for
the membership attack, so the same measurement runs on any model whose scores and training split are at hand.
Each carries its own proof of sensitivity: the PII scan over a copy with planted card numbers and emails,
and the membership attack on a reference model that memorised random labels.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from security_tests.contract import Evidence

PII_COLUMN = re.compile(r"card|pan|name|email|ssn|phone|address|birth|dob|iban|account", re.I)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.I)
DIGITS = re.compile(r"\b\d{13,19}\b")


def _luhn(number: str) -> bool:
    total = 0
    for index, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def scan_pii(frame: pd.DataFrame) -> dict:
    columns = [c for c in frame.columns if PII_COLUMN.search(c)]
    cells = frame.astype(str).to_numpy().ravel()
    cards = sum(1 for cell in cells for match in DIGITS.findall(cell) if _luhn(match))
    emails = sum(1 for cell in cells if EMAIL.search(cell))
    found = bool(columns or cards or emails)
    return {"rows": int(len(frame)), "pii_columns": columns, "card_numbers": cards, "emails": emails,
            "pii_found": found}


def membership_advantage(scores_members: np.ndarray, scores_others: np.ndarray) -> dict:
    """Best-threshold attack on a per-row score (higher = more likely a member); 0.5 is chance."""
    scores = np.concatenate([scores_members, scores_others])
    truth = np.concatenate([np.ones(len(scores_members)), np.zeros(len(scores_others))])
    best = 0.5
    for threshold in np.unique(scores):
        accuracy = float(np.mean((scores >= threshold) == truth))
        best = max(best, accuracy, 1 - accuracy)
    return {"attack_accuracy": round(best, 4), "advantage": round(2 * best - 1, 4)}


def membership_inference(predict_proba, X_members, y_members, X_others, y_others, n: int = 400) -> dict:
    """Confidence in the true label as the membership score: members of an overfit model score higher."""
    def score(X, y):
        p = predict_proba(X[:n])
        return np.where(y[:n] == 1, p, 1 - p)

    return membership_advantage(score(X_members, y_members), score(X_others, y_others))


def pii_exposure(frame: pd.DataFrame) -> Evidence:
    """Scan the training data; the same scan over a copy with planted card numbers and emails shows it can find them."""
    result = scan_pii(frame)
    leaky = frame.head(50).assign(card_number=["4539578763621486"] * 50, email=["a.b@example.com"] * 50)
    detector = scan_pii(leaky)
    return Evidence(
        attack_succeeded=result["pii_found"], queries=0,
        summary=(f"{result['rows']} training rows: PII columns {result['pii_columns']}, card numbers "
                 f"{result['card_numbers']}, emails {result['emails']}; the same scan finds "
                 f"{detector['card_numbers']} cards and {detector['emails']} emails in a leaky copy"),
        measurements={"rows": result["rows"], "card_numbers": result["card_numbers"], "emails": result["emails"]},
        details={**result, "detector_on_leaky_copy": detector})


def membership_exposure(victim: dict, overfit: dict, members: int = 400) -> Evidence:
    """``victim`` and ``overfit`` are ``membership_inference`` results on the served model and on a reference
    that memorised random labels (which shows the attack would notice memorisation)."""
    return Evidence(
        attack_succeeded=victim["advantage"] > 0.1, queries=2 * members,
        summary=(f"membership attack accuracy {victim['attack_accuracy']:.3f} on the victim (0.5 is chance); "
                 f"{overfit['attack_accuracy']:.3f} on a reference model that memorised random labels"),
        measurements={"victim_accuracy": victim["attack_accuracy"], "victim_advantage": victim["advantage"],
                      "overfit_accuracy": overfit["attack_accuracy"], "overfit_advantage": overfit["advantage"]},
        details={"members": members, "non_members": members})
