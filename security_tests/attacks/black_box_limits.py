"""Black-box HIGH-1 (is the promised limit held, per key and per address) and HIGH-4 (what one window of
label-only answers buys an extractor), from a target profile alone.

Both need a window nobody else spent: the plan gives each its own key and source address. A first
request that is already refused means the window was not fresh, which is reported not assessed.
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
from security_tests.attacks.client import exchange
from security_tests.attacks.schema_inputs import random_rows
from security_tests.contract import Evidence, NotAssessed

BYPASS_PROBES = 3
EXTRACTION_THRESHOLD = 0.85


def flood_extra(limit: int) -> int:
    return max(5, limit // 5)


def _flood(client, payload: dict, n: int, offset: int = 0) -> dict:
    """``offset`` requests were sent before this flood in the same window (for the refusal's position)."""
    statuses, answered, first_refused, retry_after, sample = {}, 0, None, None, None
    for index in range(n):
        answer = client.predict(payload)
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        if answer.ok:
            answered += 1
        elif first_refused is None:
            first_refused, retry_after = index + 1, answer.headers.get("Retry-After")
            sample = exchange("The first refused request and its response", payload, answer)
    return {"answered": answered, "statuses": statuses, "first_refused_at": first_refused and first_refused + offset,
            "retry_after": retry_after, "sample": sample}


def rate_limit(fresh, same_key_elsewhere, other_key_same_address, profile: TargetProfile) -> Evidence:
    """``limit + extra`` requests on a fresh key and address; then the same key from another address and
    another key from the same address, which a limit per key and per address must both refuse."""
    limit, payload = profile.rate_limit, profile.negative_example
    first = fresh.predict(payload)
    if first.status == 429:
        raise NotAssessed("not assessed (budget): the first request of the planned fresh window was refused "
                          "with 429, so the window had been spent before this test")
    require_answer(first, "the first request of the window")
    flood = _flood(fresh, payload, limit + flood_extra(limit) - 1, offset=1)
    answered = flood["answered"] + 1
    refusals = {s: n for s, n in flood["statuses"].items() if s != 200}
    if answered <= limit and set(refusals) - {429}:
        raise NotAssessed(f"not assessed: after {answered} answers the target refused with {refusals}, not 429")
    bypass = {}
    for name, client in (("same key, another address", same_key_elsewhere),
                         ("another key, the same address", other_key_same_address)):
        if client is not None:
            bypass[name] = sum(client.predict(payload).ok for _ in range(BYPASS_PROBES))
    escaped = {name: n for name, n in bypass.items() if n}
    sent = limit + flood_extra(limit) + BYPASS_PROBES * len(bypass)
    return Evidence(
        attack_succeeded=answered > limit or bool(escaped), queries=sent,
        summary=(f"{answered} of {limit + flood_extra(limit)} requests answered on one key and address "
                 f"(promised {limit} per {profile.rate_window})"
                 + (f", first refusal at {flood['first_refused_at']} (Retry-After {flood['retry_after']})"
                    if flood["first_refused_at"] else ", none refused")
                 + "; after the window was spent: " + (", ".join(f"{k} {v} of {BYPASS_PROBES} answered"
                                                               for k, v in bypass.items()) or "no bypass tried")),
        samples=[flood["sample"]] if flood["sample"] else [],
        measurements={"answered": answered, "limit": limit, "first_refused_at": flood["first_refused_at"],
                      **{f"bypass.{k}": v for k, v in bypass.items()}},
        details={"statuses": {**flood["statuses"], 200: flood["statuses"].get(200, 0) + 1},
                 "retry_after": flood["retry_after"], "bypass_answered": bypass,
                 "not_tried": [] if len(bypass) == 2 else ["another key from the same address (one key given)"]})


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
