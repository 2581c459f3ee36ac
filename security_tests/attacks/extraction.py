"""HIGH-1: flooding, and model extraction through the answers the flood buys.

The surrogate is a decision tree trained on the (query, answered label) pairs; its fidelity is its
agreement with the victim's labels on held-out transactions the attacker never sent.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from fraudpipe.data import FEATURE_NAMES
from security_tests.attacks.client import Client, exchange

BUDGETS = (10, 30, 100, 300, 1000)


def random_queries(n: int, seed: int = 7) -> list[dict]:
    """Uniform over plausible values: the attacker knows the feature names, not the data."""
    rng = np.random.default_rng(seed)
    return [{"amount": round(float(a), 2), "hour_of_day": int(h), "transactions_24h": int(t),
             "foreign_transaction": int(f)}
            for a, h, t, f in zip(rng.uniform(1, 2000, n), rng.integers(0, 24, n), rng.integers(0, 41, n),
                                  rng.integers(0, 2, n))]


def flood(client: Client, payloads: list[dict]) -> dict:
    statuses: dict[int, int] = {}
    answered, first_refused, retry_after, refused_sample = [], None, None, None
    started = time.perf_counter()
    for index, payload in enumerate(payloads):
        answer = client.predict(payload)
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        if answer.ok:
            answered.append((payload, answer.label, answer.body.get("fraud_probability")))
        elif first_refused is None:
            first_refused = index + 1
            retry_after = answer.headers.get("Retry-After")
            refused_sample = exchange(payload, answer)
    return {"sent": len(payloads), "answered": answered, "statuses": statuses, "first_refused_at": first_refused,
            "retry_after": retry_after, "refused_sample": refused_sample,
            "seconds": round(time.perf_counter() - started, 3)}


def _matrix(payloads) -> np.ndarray:
    return np.array([[p[name] for name in FEATURE_NAMES] for p in payloads], dtype=float)


def surrogate_fidelity(answered: list, holdout: np.ndarray, victim_labels: np.ndarray) -> float | None:
    if not answered:
        return None
    X = _matrix([p for p, _, _ in answered])
    y = np.array([label for _, label, _ in answered])
    if len(set(y)) < 2:
        return float(np.mean(victim_labels == y[0]))
    surrogate = DecisionTreeClassifier(random_state=0).fit(X, y)
    return float(np.mean(surrogate.predict(holdout) == victim_labels))


def fidelity_by_class(answered: list, holdout: np.ndarray, victim_labels: np.ndarray) -> dict[str, float | None]:
    """Agreement on the victim's fraud rows and legitimate rows separately: on a 95 %-legitimate set a
    surrogate that always says LEGITIMATE agrees 95 % of the time, and these numbers show it (0 % on fraud)."""
    if not answered:
        return {"fraud": None, "legitimate": None}
    X = _matrix([p for p, _, _ in answered])
    y = np.array([label for _, label, _ in answered])
    predicted = np.full(len(holdout), y[0]) if len(set(y)) < 2 else \
        DecisionTreeClassifier(random_state=0).fit(X, y).predict(holdout)
    return {name: (float(np.mean(predicted[victim_labels == label] == label)) if np.any(victim_labels == label) else None)
            for name, label in (("fraud", 1), ("legitimate", 0))}


def fidelity_curve(answered: list, holdout: np.ndarray, victim_labels: np.ndarray,
                   fidelity=surrogate_fidelity) -> dict[str, float | None]:
    """Fidelity of a surrogate trained on the first 10, 30, 100, ... answers (as many as were answered)."""
    return {str(b): fidelity(answered[:b], holdout, victim_labels) for b in BUDGETS if b <= len(answered)}


def _series(curve: dict) -> list:
    return [[int(b) for b in curve], list(curve.values())]


def flood_and_extract(client: Client, n: int, holdout: np.ndarray, victim_labels: np.ndarray,
                      allowed: int) -> dict:
    """Send ``n`` automated queries, then train surrogates on the first 10, 30, ... answers."""
    result = flood(client, random_queries(n))
    answered = result.pop("answered")
    curve = fidelity_curve(answered, holdout, victim_labels)
    fidelity_all = surrogate_fidelity(answered, holdout, victim_labels)
    return {
        **result,
        "answered": len(answered),
        "limit": allowed,
        "fidelity_by_queries": curve,
        "fidelity_with_all_answers": fidelity_all,
        "holdout_rows": int(len(holdout)),
        "charts": [{"kind": "line", "title": "Surrogate fidelity against answered queries",
                    "xlabel": "answered queries (log)", "ylabel": "agreement with victim", "logx": True,
                    "series": {"label-only surrogate": _series(curve)}}]
                  if curve else [],
        "attack_succeeded": len(answered) > allowed,
        "summary": (f"{len(answered)} of {n} automated queries answered"
                    + (f", first refusal at query {result['first_refused_at']} (Retry-After {result['retry_after']})"
                       if result["first_refused_at"] else "")
                    + (f"; a surrogate trained on them agrees with the victim on {fidelity_all:.1%} of "
                       f"{len(holdout)} held-out rows" if fidelity_all is not None else "")),
    }


def _probability_fidelity(answered: list, holdout: np.ndarray, victim_labels: np.ndarray) -> float | None:
    if not answered or any(p is None for _, _, p in answered):
        return None
    from sklearn.tree import DecisionTreeRegressor

    surrogate = DecisionTreeRegressor(random_state=0).fit(_matrix([p for p, _, _ in answered]),
                                                          [prob for _, _, prob in answered])
    return float(np.mean((surrogate.predict(holdout) > 0.5).astype(int) == victim_labels))


def extraction_curves(client: Client, holdout: np.ndarray, victim_labels: np.ndarray, limit: int) -> dict:
    """Fidelity against queries for label and probability answers, and what one limit window buys."""
    result = flood(client, random_queries(max(BUDGETS), seed=21))
    answered = result.pop("answered")
    labels_curve = fidelity_curve(answered, holdout, victim_labels)
    proba_curve = fidelity_curve(answered, holdout, victim_labels, fidelity=_probability_fidelity)
    in_window = surrogate_fidelity(answered[:limit], holdout, victim_labels)
    by_class = fidelity_by_class(answered[:limit], holdout, victim_labels)
    worst_class = min((v for v in by_class.values() if v is not None), default=None)
    window_labels = [label for _, label, _ in answered[:limit]]
    series = {"labels only": _series(labels_curve)}
    if all(v is not None for v in proba_curve.values()) and proba_curve:
        series["with probabilities"] = _series(proba_curve)
    return {
        "sent": result["sent"], "answered": len(answered), "statuses": result["statuses"],
        "limit_per_window": limit, "answered_in_first_window": min(len(answered), limit),
        "fidelity_labels_only": labels_curve,
        "fidelity_with_probabilities": {k: v for k, v in proba_curve.items() if v is not None},
        "fidelity_inside_one_window": in_window,
        "charts": [{"kind": "line", "title": "Surrogate fidelity against queries (labels vs probabilities)",
                    "xlabel": "queries (log)", "ylabel": "agreement with victim", "logx": True, "series": series}],
        "fidelity_inside_one_window_by_class": by_class,
        "labels_answered_inside_one_window": {str(k): window_labels.count(k) for k in (0, 1)},
        "holdout_labels": {str(k): int(np.sum(victim_labels == k)) for k in (0, 1)},
        "attack_succeeded": worst_class is not None and worst_class >= 0.9,
        "residual": (f"a label-only surrogate trained on the {min(len(answered), limit)} queries one rate-limit "
                     f"window allows agrees with the victim on {by_class['fraud']:.1%} of its fraud rows and "
                     f"{by_class['legitimate']:.1%} of its legitimate rows (held out)"
                     if worst_class is not None else "no answers inside the window"),
        "summary": (f"{len(answered)} of {result['sent']} queries answered; fidelity inside one window of {limit}: "
                    + (f"{in_window:.1%} overall, {by_class['fraud']:.1%} on fraud rows, {by_class['legitimate']:.1%} "
                       f"on legitimate rows" if worst_class is not None else "n/a")
                    + f"; labels-only curve {labels_curve}"),
    }
