"""LOW-1 and LOW-2: does data or key material leak, and does the model reveal its training rows?"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

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


KEY_PATTERNS = (b"-----BEGIN", b"PRIVATE KEY")


def scan_secrets(paths: list[Path], secrets: list[bytes]) -> dict:
    hits = []
    for path in paths:
        data = path.read_bytes()
        for needle in (*KEY_PATTERNS, *secrets):
            if needle and needle in data:
                hits.append({"file": path.name, "pattern": needle[:10].decode("ascii", "replace") + "…"})
    return {"files_scanned": len(paths), "hits": hits, "secrets_found": bool(hits)}
