"""CRIT-2: decision-boundary probing, from one fraudulent transaction, one feature at a time.

Two measurements per feature: a sweep (what an attacker sees as the feature moves: the label, and
the probability where the service returns it) and a label-only bisection, which finds where the label
flips to a stated tolerance in about log2(range / tolerance) queries whether or not the probability
is exposed. That second number is the residual risk of hiding the probability.
"""

from __future__ import annotations

import math

from fraudpipe.data import FEATURES, FRAUD_EXAMPLE
from security_tests.attacks.client import Client, exchange
from security_tests.contract import Evidence

SWEEPS = {
    "amount": [800, 600, 400, 300, 250, 200, 150, 100, 50, 10],
    "hour_of_day": list(range(24)),
    "transactions_24h": [20, 15, 10, 5, 3, 1, 0],
    "foreign_transaction": [1, 0],
}
TOLERANCE = {"amount": 1.0, "hour_of_day": 1, "transactions_24h": 1, "foreign_transaction": 1}


class _Counter:
    """Asks for one feature changed from the base transaction; counts every request it sends."""

    def __init__(self, client: Client, base: dict) -> None:
        self.client, self.base, self.queries = client, base, 0
        self.probability_seen = False
        self.sample = None

    def ask(self, name: str, value) -> tuple[int | None, float | None]:
        payload = dict(self.base, **{name: value})
        answer = self.client.predict(payload)
        self.queries += 1
        if self.sample is None:
            self.sample = exchange("A probing request and its response", payload, answer)
        if not answer.ok:
            return None, None
        probability = answer.body.get("fraud_probability")
        self.probability_seen |= probability is not None
        return answer.label, probability


def bisect_flip(ask, feature, start, end, tolerance) -> dict:
    """Label-only search between ``start`` (base label) and ``end`` (other label)."""
    base_label, _ = ask(feature.name, start)
    end_label, _ = ask(feature.name, end)
    if base_label is None or end_label is None:
        return {"flipped": False, "blocked": True}
    if base_label == end_label:
        return {"flipped": False, "blocked": False}
    same, other = start, end
    while abs(other - same) > tolerance:
        middle = feature.cast((same + other) / 2)
        if middle in (same, other):
            break
        label, _ = ask(feature.name, middle)
        if label is None:
            return {"flipped": False, "blocked": True}
        if label == base_label:
            same = middle
        else:
            other = middle
    return {"flipped": True, "blocked": False, "last_base_label_value": same, "first_flipped_value": other}


def _probe_feature(counter: _Counter, feature, base: dict) -> dict:
    """A sweep, two queries to pick the direction the label flips in, then the label-only bisection."""
    curve = []
    for value in SWEEPS[feature.name]:
        label, probability = counter.ask(feature.name, value)
        curve.append({"value": value, "label": label, "probability": probability})
    sweep_queries = counter.queries
    low = feature.low + (0.01 if not feature.low_inclusive else 0)
    start = base[feature.name]
    label_low, _ = counter.ask(feature.name, low)
    label_start, _ = counter.ask(feature.name, start)
    end = low if label_low != label_start else feature.high
    search_started = counter.queries
    found = bisect_flip(counter.ask, feature, start, end, TOLERANCE[feature.name])
    found["queries"] = counter.queries - search_started
    found["searched_range"] = [min(start, end), max(start, end)]
    found["tolerance"] = TOLERANCE[feature.name]
    found["log2_range_over_tolerance"] = round(math.log2(max(abs(end - start), 1) / TOLERANCE[feature.name]), 2)
    return {"sweep": curve, "sweep_queries": sweep_queries, "direction_queries": 2, "label_only_search": found,
            "queries": counter.queries}


def _charts(features: dict, probability_seen: bool) -> list[dict]:
    return [{
        "kind": "line", "title": f"Probing {name} from the seed's fraud transaction",
        "xlabel": name, "ylabel": "response",
        "series": {"label (1 = FRAUD)": [[p["value"] for p in f["sweep"]], [p["label"] for p in f["sweep"]]],
                   **({"fraud_probability": [[p["value"] for p in f["sweep"]],
                                             [p["probability"] for p in f["sweep"]]]} if probability_seen else {})},
    } for name, f in features.items() if name in ("amount", "hour_of_day")]


def probe_boundaries(client: Client, base: dict = FRAUD_EXAMPLE) -> Evidence:
    features, samples, probability_seen = {}, [], False
    for feature in FEATURES:
        counter = _Counter(client, base)
        features[feature.name] = _probe_feature(counter, feature, base)
        probability_seen |= counter.probability_seen
        samples = samples or [counter.sample]
    total = sum(f["queries"] for f in features.values())
    flips = {name: f["label_only_search"] for name, f in features.items() if f["label_only_search"]["flipped"]}
    blocked = any(f["label_only_search"].get("blocked") for f in features.values())
    flip_text = "; ".join(f"{name} flips between {f['last_base_label_value']} and {f['first_flipped_value']} "
                          f"({f['queries']} label-only queries)" for name, f in flips.items()) or "no flip found"
    return Evidence(
        attack_succeeded=probability_seen,
        summary=(f"probability {'EXPOSED' if probability_seen else 'not returned'} in {total} "
                 f"queries; label-only: {flip_text}"),
        queries=total, samples=samples, charts=_charts(features, probability_seen),
        measurements={f"label_only_queries.{name}": f["label_only_search"]["queries"] for name, f in features.items()},
        details={"base_transaction": base, "probability_exposed": probability_seen, "features": features,
                 "flip_points": {name: [f["last_base_label_value"], f["first_flipped_value"]]
                                 for name, f in flips.items()},
                 "blocked": blocked})
