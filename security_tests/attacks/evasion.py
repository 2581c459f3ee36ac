"""HIGH-3: label-only evasion. From each fraudulent transaction, find the cheapest change of the
attacker's own features that turns FRAUD into LEGITIMATE, asking only for labels.

Changes are priced in feature units (hours, transactions, one foreign flag, $100 of amount), tried
cheapest first: single features, then pairs. Integer features are rounded before asking, and every
success is re-checked with a second query.
"""

from __future__ import annotations

import itertools

import numpy as np

from fraudpipe.data import BY_NAME, FEATURE_NAMES, FEATURES, LABEL, as_transaction, feature_matrix, generate_transactions
from security_tests.attacks.client import Client
from security_tests.contract import Evidence

MAX_STEPS = {"amount": 10, "hour_of_day": 12, "transactions_24h": 20, "foreign_transaction": 1}


def fraud_rows(n: int = 20, seed: int = 4242) -> list[dict]:
    """Fraudulent transactions the attacker wants through, from the same recipe as the model's data."""
    frame = generate_transactions(4_000, seed=seed)
    return [as_transaction(row) for row in feature_matrix(frame[frame[LABEL] == 1].head(n))]


def _moves(row: dict, name: str) -> list[tuple[float, object]]:
    feature = BY_NAME[name]
    moves = []
    for step in range(1, MAX_STEPS[name] + 1):
        for sign in (1, -1):
            value = feature.cast(row[name] + sign * step * feature.unit)
            if feature.contains(value) and value != row[name]:
                moves.append((step, value))
    return moves


def candidates(row: dict):
    singles = [(cost, {name: value}) for name in FEATURE_NAMES for cost, value in _moves(row, name)]
    yield from sorted(singles, key=lambda c: c[0])
    pairs = []
    for a, b in itertools.combinations(FEATURE_NAMES, 2):
        for (ca, va), (cb, vb) in itertools.product(_moves(row, a)[:6], _moves(row, b)[:6]):
            pairs.append((ca + cb, {a: va, b: vb}))
    yield from sorted(pairs, key=lambda c: c[0])


def evade_row(client: Client, row: dict, budget: int = 60) -> dict:
    queries = 0
    for cost, change in candidates(row):
        if queries >= budget:
            break
        answer = client.predict({**row, **change})
        queries += 1
        if not answer.ok:
            return {"evaded": False, "queries": queries, "blocked_status": answer.status}
        if answer.label == 0:
            confirm = client.predict({**row, **change})
            queries += 1
            if confirm.ok and confirm.label == 0:
                return {"evaded": True, "queries": queries, "cost": cost,
                        "change": {k: [row[k], v] for k, v in change.items()}}
    return {"evaded": False, "queries": queries}


def informed_evasion(client: Client, rows: list[dict], hour: int = 6) -> Evidence:
    """What 7 probing queries teach: move each fraudulent transaction to ``hour``, one query each."""
    evaded = sum(a.ok and a.label == 0 for a in (client.predict({**row, "hour_of_day": hour}) for row in rows))
    return Evidence(attack_succeeded=evaded > len(rows) / 2, queries=len(rows),
                    summary=f"hour_of_day set to {hour}: {evaded} of {len(rows)} evaded, one query each",
                    measurements={"evaded": evaded, "rows": len(rows)})


def _search_summary(searched: list[dict]) -> dict:
    evaded = [s for s in searched if s["evaded"]]
    features_moved: dict[str, int] = {}
    for s in evaded:
        key = "+".join(sorted(s["change"]))
        features_moved[key] = features_moved.get(key, 0) + 1
    return {"search_evaded": len(evaded), "features_moved": features_moved,
            "search_queries_median": float(np.median([s["queries"] for s in searched])) if searched else 0.0,
            "search_blocked_rows": sum("blocked_status" in s for s in searched),
            "example_changes": [s["change"] for s in evaded[:5]]}


def evasion_campaign(client: Client, rows: list[dict] | None = None, informed_hour: int = 6) -> Evidence:
    """The informed attack first (move the hour), then the blind search per row.

    Under a rate limit the cheap attack is what an attacker spends its budget on, so it goes first.
    """
    rows = rows or fraud_rows()
    detected = [r for r in rows if (a := client.predict(r)).ok and a.label == 1]
    informed = informed_evasion(client, detected, informed_hour)
    searched = [evade_row(client, row) for row in detected]
    search = _search_summary(searched)
    n = len(detected)
    rate = search["search_evaded"] / n if n else 0.0
    informed_rate = informed.measurements["evaded"] / n if n else 0.0
    return Evidence(
        attack_succeeded=max(rate, informed_rate) > 0.5,
        queries=len(rows) + informed.queries + sum(s["queries"] for s in searched),
        summary=(f"label-only search evaded {search['search_evaded']} of {n} detected fraud rows "
                 f"(median {search['search_queries_median']:.0f} queries, moves: {search['features_moved']}, "
                 f"{search['search_blocked_rows']} rows cut off by refusals); informed: {informed.summary}"),
        residual=(f"moving a fraudulent transaction to {informed_hour}:00 evades detection for "
                  f"{informed.measurements['evaded']} of {n} fraud rows, one query each, labels only"),
        measurements={"fraud_rows": len(rows), "detected_before_attack": n, "search_evaded": search["search_evaded"],
                      "search_success_rate": round(rate, 4), "informed_evaded": informed.measurements["evaded"],
                      "informed_success_rate": round(informed_rate, 4),
                      "search_queries_median": search["search_queries_median"]},
        details={**search, "informed_attack": informed.summary})


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def hopskipjump_campaign(client: Client, rows: list[dict], max_iter: int = 5, max_eval: int = 50,
                         init_eval: int = 10) -> Evidence:
    """ART's HopSkipJump (label-only, decision-based) as an independent second evasion attack.

    The attacker rounds integer features before each query, clips every feature to its schema range,
    and sees only labels; a refused query counts as FRAUD.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

    low = np.array([f.low + (0 if f.low_inclusive else 0.01) for f in FEATURES])
    high = np.array([2000.0, 23, 100, 1], dtype=float)  # the attacker's search box
    queries, refused = [0], [0]

    def predict(batch: np.ndarray) -> np.ndarray:
        labels = []
        for x in np.asarray(batch, dtype=float):
            answer = client.predict(as_transaction(np.clip(x, low, high)))
            queries[0] += 1
            refused[0] += not answer.ok
            if refused[0] > 10:
                raise _Refused(answer.status)
            labels.append(answer.label if answer.ok else 1)
        return np.eye(2)[labels]

    X = np.array([[row[name] for name in FEATURE_NAMES] for row in rows], dtype=float)
    classifier = BlackBoxClassifier(predict, input_shape=(len(FEATURE_NAMES),), nb_classes=2, clip_values=(low, high))
    attack = HopSkipJump(classifier, targeted=False, max_iter=max_iter, max_eval=max_eval, init_eval=init_eval,
                         init_size=50, norm=2, verbose=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adversarial = attack.generate(X)
    except _Refused as refusal:
        return Evidence(attack_succeeded=False, queries=queries[0],
                        summary=f"HopSkipJump stopped after {queries[0]} queries: the service refused with "
                                f"{refusal.status}", details={"rows": len(rows), "blocked_status": refusal.status})
    return _hopskipjump_result(client, rows, X, adversarial, queries[0],
                               {"max_iter": max_iter, "max_eval": max_eval, "init_eval": init_eval})


def _hopskipjump_result(client: Client, rows: list[dict], X: np.ndarray, adversarial: np.ndarray, spent: int,
                        budget: dict) -> Evidence:
    """Ask once more for each adversarial row: the evasions the service confirms."""
    final = [client.predict(as_transaction(x)) for x in adversarial]
    evaded = [a.ok and a.label == 0 for a in final]
    moved = {name: int(sum(abs(a - b) > 1e-9 for a, b in zip(adversarial[:, i][evaded], X[:, i][evaded])))
             for i, name in enumerate(FEATURE_NAMES)}
    per_row = spent / len(rows)
    return Evidence(
        attack_succeeded=sum(evaded) / len(rows) > 0.5, queries=spent + len(final),
        summary=f"HopSkipJump evaded {sum(evaded)} of {len(rows)} fraud rows, {per_row:.0f} label-only queries "
                f"each; features changed: {moved}",
        residual=f"HopSkipJump (label-only) evades {sum(evaded)} of {len(rows)} in {per_row:.0f} queries per transaction",
        measurements={"rows": len(rows), "evaded": int(sum(evaded)), "success_rate": round(sum(evaded) / len(rows), 4),
                      "queries_per_row": round(per_row, 1)},
        details={"features_changed_in_evading_rows": moved, "budget": budget,
                 "examples": [{"from": as_transaction(a), "to": as_transaction(b)} for a, b in zip(X[:3], adversarial[:3])]})
