"""Black-box HIGH-3: label-only evasion from the profile's positive example.

Both ends of every feature's range first (the cheapest way to learn which features can flip the label
alone), then a bisection per flipping feature for the smallest change, then pairs of range ends if no
single feature flips. Every evasion is confirmed with a second query. The search stops when its
planned budget is spent: a search cut short with nothing found is not assessed, never "fixed".
"""

from __future__ import annotations

import itertools

from security_tests.targets.profile import FieldSpec, TargetProfile
from security_tests.attacks.client import require_answer
from security_tests.contract import Evidence, NotAssessed
from security_tests.contract import BudgetSpent


class _Asker:
    def __init__(self, client, base: dict) -> None:
        self.client, self.base, self.queries = client, base, 0

    def negative(self, change: dict) -> bool | None:
        """True when the changed input is answered with the label the attacker wants."""
        answer = self.client.predict({**self.base, **change})
        self.queries += 1
        return None if not answer.ok else not answer.positive


def _bisect(ask: _Asker, spec: FieldSpec, start: float, end: float) -> dict:
    """Between ``start`` (positive) and ``end`` (negative): the value closest to ``start`` still negative."""
    positive, negative = start, end
    while abs(negative - positive) > spec.step:
        middle = spec.cast((positive + negative) / 2)
        if float(middle) in (float(positive), float(negative)):
            break
        if ask.negative({spec.name: middle}):
            negative = middle
        else:
            positive = middle
    return {"last_positive": positive, "first_negative": negative}


def _ends(ask: _Asker, profile: TargetProfile) -> dict[str, list]:
    flips = {}
    for spec in profile.fields:
        for end in (spec.lowest, spec.highest):
            value = spec.cast(end)
            if value != ask.base[spec.name] and ask.negative({spec.name: value}):
                flips.setdefault(spec.name, []).append(value)
    return flips


def _pairs(ask: _Asker, profile: TargetProfile) -> dict | None:
    for a, b in itertools.combinations(profile.fields, 2):
        for va, vb in itertools.product((a.lowest, a.highest), (b.lowest, b.highest)):
            change = {a.name: a.cast(va), b.name: b.cast(vb)}
            if ask.negative(change):
                return change
    return None


def boundary_evasion(client, profile: TargetProfile) -> Evidence:
    base = profile.positive_example
    answer = require_answer(client.predict(base), "the positive example")
    if not answer.positive:
        raise NotAssessed(f"not assessed: the positive example was answered {answer.label!r}, not "
                          f"{profile.positive!r}; fix examples.positive in the profile")
    ask, flips, pair, confirmed, cut_short = _Asker(client, base), {}, None, False, False
    try:
        flips = {name: {"ends_answered_negative": ends, "first_negative": ends[0]}
                 for name, ends in _ends(ask, profile).items()}
        for name, found in flips.items():
            spec = next(f for f in profile.fields if f.name == name)
            found.update(_bisect(ask, spec, base[name], found["first_negative"]))
        pair = None if flips else _pairs(ask, profile)
    except BudgetSpent:
        cut_short = True
    change = min(({n: f["first_negative"]} for n, f in flips.items()), key=lambda c: _cost(profile, base, c),
                 default=pair)
    if change is None and cut_short:
        raise NotAssessed(f"not assessed (budget): the boundary search was cut short after {ask.queries} "
                          "queries with no evasion found")
    try:
        confirmed = bool(change) and ask.negative(change) is True
    except BudgetSpent:
        pass
    found = _evidence(profile, base, flips, change, confirmed, ask.queries + 1)
    hsj = found.details["hopskipjump"] = hopskipjump(client, profile, base)
    found.queries += hsj.get("queries", 0)
    found.summary += "; HopSkipJump: " + (hsj["reason"] if not hsj["run"] else
                                          f"{'evaded' if hsj['evaded'] else 'no evasion'} in {hsj['queries']} "
                                          f"queries{', ' + hsj['reason'] if 'reason' in hsj else ''}")
    return found


def _cost(profile: TargetProfile, base: dict, change: dict) -> float:
    return sum(abs(float(v) - float(base[n])) / (f.highest - f.lowest)
               for n, v in change.items() for f in profile.fields if f.name == n)


def _evidence(profile, base, flips, change, confirmed, queries) -> Evidence:
    moved = {n: [base[n], v] for n, v in (change or {}).items()}
    return Evidence(
        attack_succeeded=bool(change), queries=queries,
        summary=(f"label-only boundary search from the positive example, {queries} queries: "
                 + (f"changing {moved} turns {profile.positive!r} into another label"
                    + (" (confirmed by a second query)" if confirmed else " (no budget left to confirm)") if change
                    else "no single feature or pair of range ends changes the label")),
        residual=(f"changing {moved} evades the model with labels alone ({queries} queries)" if change else ""),
        measurements={"queries": queries, "features_that_flip_alone": len(flips),
                      "relative_change": round(_cost(profile, base, change), 4) if change else None},
        details={"base": base, "flips": flips, "cheapest_change": moved, "confirmed": confirmed})


HSJ_QUERIES = 200
HSJ_MINIMUM = 100


def hopskipjump(client, profile: TargetProfile, base: dict) -> dict:
    """ART's HopSkipJump (decision-based, labels only) from the positive example, inside the profile's
    ranges, as an independent second attack when at least ``HSJ_MINIMUM`` planned queries are left."""
    import warnings

    import numpy as np

    left = getattr(client, "remaining", HSJ_QUERIES)
    if left < HSJ_MINIMUM:
        return {"run": False, "reason": f"not run (budget): {left} planned queries left, it needs about {HSJ_MINIMUM}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

    low = np.array([f.lowest for f in profile.fields], dtype=float)
    high = np.array([f.highest for f in profile.fields], dtype=float)
    asked = [0]

    def predict(batch):
        labels = []
        for x in np.asarray(batch, dtype=float):
            answer = client.predict(profile.row(np.clip(x, low, high)))
            asked[0] += 1
            labels.append(1 if answer.positive in (True, None) else 0)
        return np.eye(2)[labels]

    classifier = BlackBoxClassifier(predict, input_shape=(len(low),), nb_classes=2, clip_values=(low, high))
    attack = HopSkipJump(classifier, targeted=False, max_iter=3, max_eval=30, init_eval=10, init_size=30,
                         norm=2, verbose=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adversarial = attack.generate(np.array([profile.vector(base)], dtype=float))[0]
        verdict = client.predict(profile.row(adversarial))
    except BudgetSpent:
        return {"run": True, "evaded": False, "queries": asked[0], "reason": "stopped: planned budget spent"}
    row = profile.row(adversarial)
    return {"run": True, "evaded": verdict.positive is False, "queries": asked[0] + 1, "adversarial": row,
            "changed": {k: [base[k], v] for k, v in row.items() if v != base[k]}}


def evasion_queries(profile: TargetProfile) -> tuple[int, int]:
    """(minimum, wanted) queries: the example and both ends of every feature; then bisections, pairs, and
    HopSkipJump if the budget allows."""
    ends = 1 + 2 * len(profile.fields)
    bisections = sum(max(1, int((f.highest - f.lowest) / f.step).bit_length()) for f in profile.fields)
    pairs = 4 * len(profile.fields) * (len(profile.fields) - 1) // 2
    return ends, ends + bisections + pairs + 1 + HSJ_QUERIES
