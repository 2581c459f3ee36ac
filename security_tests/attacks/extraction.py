"""HIGH-1: flooding, and model extraction through the answers the flood buys.

The surrogate is a decision tree trained on the (query, answered label) pairs; its fidelity is its
agreement with the victim's labels on held-out transactions the attacker never sent.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from fraudpipe.data import FEATURE_NAMES, FEATURES, as_transaction
from security_tests.attacks.client import Client, exchange
from security_tests.contract import Evidence

BUDGETS = (10, 30, 100, 300, 1000)


def random_queries(n: int, seed: int = 7) -> list[dict]:
    """Uniform over each feature's typical range: the attacker knows the domain, not the data."""
    rng = np.random.default_rng(seed)
    columns = [rng.uniform(*f.typical, n) if f.kind == "float" else rng.integers(f.typical[0], f.typical[1] + 1, n)
               for f in FEATURES]
    return [as_transaction(values) for values in zip(*columns)]


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
            refused_sample = exchange("A refused request and its response", payload, answer)
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


def random_flood(client: Client, n: int) -> Evidence:
    """``n`` random queries as fast as the client goes; succeeds when every one is answered."""
    result = flood(client, random_queries(n))
    answered = len(result["answered"])
    return Evidence(attack_succeeded=answered == n, summary=f"{answered} of {n} random queries answered",
                    queries=n, measurements={"answered": answered}, details={"statuses": result["statuses"]})


def _flood_summary(result: dict, answered: int, holdout_rows: int, fidelity_all: float | None) -> str:
    return (f"{answered} of {result['sent']} automated queries answered"
            + (f", first refusal at query {result['first_refused_at']} (Retry-After {result['retry_after']})"
               if result["first_refused_at"] else "")
            + (f"; a surrogate trained on them agrees with the victim on {fidelity_all:.1%} of "
               f"{holdout_rows} held-out rows" if fidelity_all is not None else ""))


def flood_and_extract(client: Client, n: int, holdout: np.ndarray, victim_labels: np.ndarray,
                      allowed: int) -> Evidence:
    """Send ``n`` automated queries, then train surrogates on the first 10, 30, ... answers."""
    result = flood(client, random_queries(n))
    answered = result.pop("answered")
    curve = fidelity_curve(answered, holdout, victim_labels)
    fidelity_all = surrogate_fidelity(answered, holdout, victim_labels)
    sample = result.pop("refused_sample")
    return Evidence(
        attack_succeeded=len(answered) > allowed, queries=result.pop("sent"),
        summary=_flood_summary({**result, "sent": n}, len(answered), len(holdout), fidelity_all),
        samples=[sample] if sample else [],
        measurements={"answered": len(answered), "limit": allowed, "first_refused_at": result["first_refused_at"],
                      "fidelity_with_all_answers": fidelity_all, "holdout_rows": int(len(holdout)),
                      "seconds": result["seconds"]},
        charts=[{"kind": "line", "title": "Surrogate fidelity against answered queries",
                 "xlabel": "answered queries (log)", "ylabel": "agreement with victim", "logx": True,
                 "series": {"label-only surrogate": _series(curve)}}] if curve else [],
        details={"statuses": result["statuses"], "retry_after": result["retry_after"], "fidelity_by_queries": curve})


def _probability_fidelity(answered: list, holdout: np.ndarray, victim_labels: np.ndarray) -> float | None:
    if not answered or any(p is None for _, _, p in answered):
        return None
    from sklearn.tree import DecisionTreeRegressor

    surrogate = DecisionTreeRegressor(random_state=0).fit(_matrix([p for p, _, _ in answered]),
                                                          [prob for _, _, prob in answered])
    return float(np.mean((surrogate.predict(holdout) > 0.5).astype(int) == victim_labels))


def extraction_curves(client: Client, holdout: np.ndarray, victim_labels: np.ndarray, limit: int) -> Evidence:
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
    window = min(len(answered), limit)
    return Evidence(
        attack_succeeded=worst_class is not None and worst_class >= 0.9, queries=result["sent"],
        summary=(f"{len(answered)} of {result['sent']} queries answered; fidelity inside one window of {limit}: "
                 + (f"{in_window:.1%} overall, {by_class['fraud']:.1%} on fraud rows, {by_class['legitimate']:.1%} "
                    f"on legitimate rows" if worst_class is not None else "n/a")
                 + f"; labels-only curve {labels_curve}"),
        residual=(f"a label-only surrogate trained on the {window} queries one rate-limit window allows agrees "
                  f"with the victim on {by_class['fraud']:.1%} of its fraud rows and {by_class['legitimate']:.1%} "
                  f"of its legitimate rows (held out)" if worst_class is not None else "no answers inside the window"),
        measurements={"answered": len(answered), "limit_per_window": limit, "answered_in_first_window": window,
                      "fidelity_inside_one_window": in_window,
                      "fidelity_inside_one_window_fraud_rows": by_class["fraud"],
                      "fidelity_inside_one_window_legitimate_rows": by_class["legitimate"],
                      "window_answers_fraud": window_labels.count(1), "window_answers_legitimate": window_labels.count(0),
                      "holdout_fraud_rows": int(np.sum(victim_labels == 1)),
                      "holdout_legitimate_rows": int(np.sum(victim_labels == 0))},
        charts=[{"kind": "line", "title": "Surrogate fidelity against queries (labels vs probabilities)",
                 "xlabel": "queries (log)", "ylabel": "agreement with victim", "logx": True, "series": series}],
        details={"statuses": result["statuses"], "fidelity_labels_only": labels_curve,
                 "fidelity_with_probabilities": {k: v for k, v in proba_curve.items() if v is not None}})
