"""HIGH-3: label-only evasion. From each fraudulent transaction, find the cheapest change of the
attacker's own features that turns FRAUD into LEGITIMATE, asking only for labels.

Changes are priced in feature units (hours, transactions, one foreign flag, $100 of amount), tried
cheapest first: single features, then pairs. Integer features are rounded before asking, and every
success is re-checked with a second query.
"""

from __future__ import annotations

import itertools

import numpy as np

from fraudpipe.data import FEATURE_NAMES, FEATURES, LABEL, generate_transactions
from security_tests.attacks.client import Client

UNIT = {"amount": 100.0, "hour_of_day": 1.0, "transactions_24h": 1.0, "foreign_transaction": 1.0}
MAX_STEPS = {"amount": 10, "hour_of_day": 12, "transactions_24h": 20, "foreign_transaction": 1}


def fraud_rows(n: int = 20, seed: int = 4242) -> list[dict]:
    """Fraudulent transactions the attacker wants through, from the same recipe as the model's data."""
    frame = generate_transactions(4_000, seed=seed)
    fraud = frame[frame[LABEL] == 1].head(n)
    return [{name: (int(row[name]) if f.kind == "int" else float(row[name])) for name, f in
             zip(FEATURE_NAMES, FEATURES)} for _, row in fraud.iterrows()]


def _moves(row: dict, name: str) -> list[tuple[float, object]]:
    feature = next(f for f in FEATURES if f.name == name)
    moves = []
    for step in range(1, MAX_STEPS[name] + 1):
        for sign in (1, -1):
            value = row[name] + sign * step * UNIT[name]
            value = int(round(value)) if feature.kind == "int" else round(value, 2)
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


def evasion_campaign(client: Client, rows: list[dict] | None = None, informed_hour: int = 6) -> dict:
    """The informed attack first (move the hour: what 7 probing queries teach), then the blind search per row.

    Under a rate limit the cheap attack is what an attacker spends its budget on, so it goes first.
    """
    rows = rows or fraud_rows()
    detected = [r for r in rows if (a := client.predict(r)).ok and a.label == 1]
    informed = [client.predict({**row, "hour_of_day": informed_hour}) for row in detected]
    searched = [evade_row(client, row) for row in detected]
    informed_evaded = sum(a.ok and a.label == 0 for a in informed)
    evaded = [s for s in searched if s["evaded"]]
    features_moved: dict[str, int] = {}
    for s in evaded:
        key = "+".join(sorted(s["change"]))
        features_moved[key] = features_moved.get(key, 0) + 1
    blocked = sum("blocked_status" in s for s in searched)
    rate = len(evaded) / len(detected) if detected else 0.0
    informed_rate = informed_evaded / len(detected) if detected else 0.0
    return {
        "fraud_rows": len(rows),
        "detected_before_attack": len(detected),
        "search_evaded": len(evaded),
        "search_success_rate": round(rate, 4),
        "search_queries_median": float(np.median([s["queries"] for s in searched])) if searched else None,
        "search_blocked_rows": blocked,
        "features_moved": features_moved,
        "example_changes": [s["change"] for s in evaded[:5]],
        "informed_attack": f"hour_of_day set to {informed_hour}, one query per transaction",
        "informed_evaded": informed_evaded,
        "informed_success_rate": round(informed_rate, 4),
        "attack_succeeded": max(rate, informed_rate) > 0.5,
        "residual": (f"moving a fraudulent transaction to {informed_hour}:00 evades detection for "
                     f"{informed_evaded} of {len(detected)} fraud rows, one query each, labels only"),
        "summary": (f"label-only search evaded {len(evaded)} of {len(detected)} detected fraud rows "
                    f"(median {float(np.median([s['queries'] for s in searched])) if searched else 0:.0f} queries, "
                    f"moves: {features_moved}, {blocked} rows cut off by refusals); informed hour={informed_hour}: {informed_evaded} of {len(detected)} "
                    f"with one query each"),
    }


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def hopskipjump_campaign(client: Client, rows: list[dict], max_iter: int = 5, max_eval: int = 50,
                         init_eval: int = 10) -> dict:
    """ART's HopSkipJump (label-only, decision-based) as an independent second evasion attack.

    The attacker rounds integer features before each query, clips every feature to its schema range,
    and sees only labels; a refused query counts as FRAUD.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

    integer = np.array([f.kind == "int" for f in FEATURES])
    low = np.array([0.01, 0, 0, 0], dtype=float)
    high = np.array([2000.0, 23, 100, 1], dtype=float)
    queries = [0]

    def as_payload(x: np.ndarray) -> dict:
        x = np.where(integer, np.round(x), np.round(x, 2))
        return {name: (int(v) if f.kind == "int" else float(v)) for name, f, v in zip(FEATURE_NAMES, FEATURES, x)}

    refused = [0]

    def predict(batch: np.ndarray) -> np.ndarray:
        labels = []
        for x in np.asarray(batch, dtype=float):
            answer = client.predict(as_payload(np.clip(x, low, high)))
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
        return {"rows": len(rows), "evaded": 0, "queries": queries[0], "blocked_status": refusal.status,
                "attack_succeeded": False,
                "summary": f"HopSkipJump stopped after {queries[0]} queries: the service refused with {refusal.status}"}
    spent = queries[0]
    final = [client.predict(as_payload(x)) for x in adversarial]
    evaded = [a.ok and a.label == 0 for a in final]
    moved = {name: int(sum(abs(a - b) > 1e-9 for a, b in zip(adversarial[:, i][evaded], X[:, i][evaded])))
             for i, name in enumerate(FEATURE_NAMES)}
    return {"rows": len(rows), "evaded": int(sum(evaded)), "success_rate": round(sum(evaded) / len(rows), 4),
            "queries": spent, "queries_per_row": round(spent / len(rows), 1),
            "features_changed_in_evading_rows": moved,
            "budget": {"max_iter": max_iter, "max_eval": max_eval, "init_eval": init_eval},
            "examples": [{"from": as_payload(a), "to": as_payload(b)} for a, b in zip(X[:3], adversarial[:3])],
            "attack_succeeded": sum(evaded) / len(rows) > 0.5,
            "residual": f"HopSkipJump (label-only) evades {sum(evaded)} of {len(rows)} in {spent / len(rows):.0f} "
                        "queries per transaction",
            "summary": f"HopSkipJump evaded {sum(evaded)} of {len(rows)} fraud rows, {spent / len(rows):.0f} "
                       f"label-only queries each; features changed: {moved}"}
