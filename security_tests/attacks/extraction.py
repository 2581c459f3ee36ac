"""HIGH-4: label-only model extraction inside one rate-limit window.

An attacker with one valid key spends one promised window on label-only queries and fits a copy of the
model; the copy is judged on held-out inputs the attacker never sent, labelled by the target. Both sets are
drawn where both labels occur, because a target whose positive label is rare in its ranges (a loan scorer
that denies a few) answers uniform random inputs with one label and then no fidelity can be told from the
always-majority baseline: around and between the profile's two examples, along the boundary a bisection
between them finds, and uniformly over the typical ranges. When the held-out answers still hold one label
the run is *inconclusive*, with what was tried. Everything comes from the target profile.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from security_tests.attacks.client import Client
from security_tests.budget import Need, spends
from security_tests.contract import BudgetSpent, Evidence, Inconclusive, NotAssessed
from security_tests.targets.profile import TargetProfile

BUDGETS = (10, 30, 100, 300, 1000)


def random_queries(profile: TargetProfile, n: int, seed: int = 7) -> list[dict]:
    """Uniform over each feature's typical range: the attacker knows the domain, not the data."""
    rng = np.random.default_rng(seed)
    columns = [rng.uniform(*f.typical_range, n) if f.type == "float"
               else rng.integers(int(f.typical_range[0]), int(f.typical_range[1]) + 1, n) for f in profile.fields]
    return [profile.row(values) for values in zip(*columns)]


def random_flood(client: Client, profile: TargetProfile, n: int) -> Evidence:
    """``n`` random queries as fast as the client goes, the extractor MED-5's monitor is measured against;
    succeeds when every one is answered."""
    statuses: Counter = Counter(client.predict(payload).status for payload in random_queries(profile, n))
    answered = statuses[200]
    return Evidence(attack_succeeded=answered == n, summary=f"{answered} of {n} random queries answered",
                    queries=n, measurements={"answered": answered}, details={"statuses": dict(statuses)})


def _series(curve: dict) -> list:
    return [[int(b) for b in curve], list(curve.values())]


HOLDOUT = (60, 100)
"""Held-out inputs the assessor has labelled by the target (fewest for a verdict, wanted)."""
UNPROMISED_WINDOW = 100
"""The window an extractor is given against a target that promises no limit."""
EXTRACTION_THRESHOLD = 0.85
CURVE_QUERIES = 1000
BOUNDARY_SHARE = 0.5
BISECTION_STEPS = 4
REFUSED_IN_A_ROW = 10
"""Refusals in a row after which a sampler stops: the target has stopped answering (its window is spent)."""


class Labeller:
    """Asks the target for the label of each input it is given and keeps the answered ones, with how each
    input was chosen."""

    def __init__(self, client: Client, profile: TargetProfile) -> None:
        self.client, self.profile = client, profile
        self.rows: list[dict] = []
        self.labels: list[bool] = []
        self.scores: list[float | None] = []
        self.chosen: Counter = Counter()
        self.sent, self.refused_in_a_row, self.boundary_points = 0, 0, 0
        self.first_status: int | None = None

    @property
    def stopped(self) -> bool:
        return self.refused_in_a_row >= REFUSED_IN_A_ROW

    def ask(self, vector, how: str) -> bool | None:
        row = self.profile.row(vector)
        answer = self.client.predict(row)
        self.sent += 1
        self.first_status = self.first_status or answer.status
        if not answer.ok:
            self.refused_in_a_row += 1
            return None
        self.refused_in_a_row = 0
        self.rows.append(row)
        self.labels.append(bool(answer.positive))
        self.scores.append(_score(answer.body, self.profile))
        self.chosen[how] += 1
        return bool(answer.positive)


def _score(body, profile: TargetProfile) -> float | None:
    """A score the answer carries besides its label (the first float between 0 and 1), if any."""
    stack = [body]
    while stack:
        value = stack.pop(0)
        if isinstance(value, dict):
            stack.extend(v for k, v in value.items() if k != profile.label_path[-1])
        elif isinstance(value, float) and 0.0 <= value <= 1.0:
            return value
    return None


def informative_rows(labeller: Labeller, n: int, seed: int, with_examples: bool = False) -> None:
    """``n`` queries where both labels occur: bisections between jittered copies of the two examples (the
    boundary, ``BOUNDARY_SHARE`` of them), then in turn inputs near a boundary point, between the examples
    and uniform over the typical ranges."""
    profile = labeller.profile
    rng = np.random.default_rng(seed)
    positive = np.array(profile.vector(profile.positive_example), dtype=float)
    negative = np.array(profile.vector(profile.negative_example), dtype=float)
    units = np.array([f.meaningful_step for f in profile.fields], dtype=float)
    low = np.array([min(f.typical_range[0], a, b) for f, a, b in zip(profile.fields, positive, negative)])
    high = np.array([max(f.typical_range[1], a, b) for f, a, b in zip(profile.fields, positive, negative)])
    end = labeller.sent + n
    if with_examples:
        labeller.ask(positive, "the examples")
        labeller.ask(negative, "the examples")
    boundary: list[np.ndarray] = []
    boundary_end = labeller.sent + int((end - labeller.sent) * BOUNDARY_SHARE)

    def jitter(vector: np.ndarray, steps: float) -> np.ndarray:
        return np.clip(vector + rng.uniform(-steps, steps, len(vector)) * units, low, high)

    while labeller.sent + 2 <= boundary_end and not labeller.stopped:
        a, b = jitter(positive, 2), jitter(negative, 2)
        label_a, label_b = labeller.ask(a, "around the examples"), labeller.ask(b, "around the examples")
        if label_a is None or label_b is None or label_a == label_b:
            continue
        for _ in range(min(BISECTION_STEPS, end - labeller.sent)):
            middle = (a + b) / 2
            if labeller.ask(middle, "along the boundary") == label_a:
                a = middle
            else:
                b = middle
        boundary.append((a + b) / 2)
    labeller.boundary_points += len(boundary)
    kinds = ("near the boundary", "between the examples", "uniform over the typical ranges")
    while labeller.sent < end and not labeller.stopped:
        kind = kinds[(end - labeller.sent) % 3]
        if kind == "near the boundary" and boundary:
            vector = jitter(boundary[rng.integers(len(boundary))], 2)
        elif kind == "uniform over the typical ranges":
            vector = rng.uniform(low, high)
        else:
            kind = "between the examples"
            vector = jitter(positive + rng.uniform() * (negative - positive), 1)
        labeller.ask(vector, kind)


def _surrogate(X: np.ndarray, y: np.ndarray, choose: bool = True):
    """The attacker's own choice between a tree and a linear model, by cross-validation on its answers
    (``choose=False``: the tree, for the points of a curve)."""
    candidates = {"decision tree": DecisionTreeClassifier(random_state=0),
                  "logistic regression": make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=2000))}
    if len(set(y)) < 2:
        return "constant (one label answered)", None
    if choose and min(np.bincount(y)) >= 3:
        scores = {n: cross_val_score(m, X, y, cv=3).mean() for n, m in candidates.items()}
        name = max(scores, key=scores.get)
    else:
        name = "decision tree"
    return name, candidates[name].fit(X, y)


def _judge(profile: TargetProfile, rows: list[dict], labels: list[bool], held: list[dict], truth: np.ndarray,
           choose: bool = True) -> dict:
    y = np.array(labels, dtype=int)
    name, model = _surrogate(np.array([profile.vector(r) for r in rows], dtype=float), y, choose)
    predicted = (np.full(len(truth), y[0] if len(y) else 0) if model is None
                 else model.predict(np.array([profile.vector(r) for r in held], dtype=float)))
    by_class = {side: float(np.mean(predicted[truth == label] == label)) for side, label in
                (("positive", 1), ("negative", 0))}
    return {"surrogate": name, "balanced": float(balanced_accuracy_score(truth, predicted)),
            "agreement": float(np.mean(predicted == truth)), **by_class}


def _score_balanced(profile: TargetProfile, rows, scores, held, truth) -> float | None:
    if not rows or any(s is None for s in scores):
        return None
    model = DecisionTreeRegressor(random_state=0).fit(np.array([profile.vector(r) for r in rows]), scores)
    return float(balanced_accuracy_score(truth, (model.predict(np.array([profile.vector(r) for r in held])) > 0.5)))


def _curves(profile: TargetProfile, attacker: Labeller, held: list[dict], truth: np.ndarray) -> dict:
    """Balanced accuracy of a tree fitted on the first 10, 30, ... answers, labels only and (when every answer
    carries a score) on the scores."""
    labels, scores = {}, {}
    for budget in (b for b in BUDGETS if b <= len(attacker.rows)):
        labels[str(budget)] = round(_judge(profile, attacker.rows[:budget], attacker.labels[:budget], held,
                                           truth, choose=False)["balanced"], 4)
        score = _score_balanced(profile, attacker.rows[:budget], attacker.scores[:budget], held, truth)
        if score is not None:
            scores[str(budget)] = round(score, 4)
    return {"labels only": labels, **({"with scores": scores} if len(scores) == len(labels) and scores else {})}


def _extraction_need(profile: TargetProfile) -> Need:
    if profile.rate_limit is None:
        return Need("", UNPROMISED_WINDOW + HOLDOUT[0], UNPROMISED_WINDOW + HOLDOUT[1],
                    why=f"{UNPROMISED_WINDOW} extraction queries and {HOLDOUT[0]}+ held-out labels")
    return Need("", *HOLDOUT, fresh=1, fresh_queries=profile.rate_limit,
                why=f"an untouched window of {profile.rate_limit} for the extractor and {HOLDOUT[0]}+ held-out labels")


@spends(_extraction_need)
def extraction(attacker: Client, assessor: Client, profile: TargetProfile, window: int, holdout: int,
               curve_queries: int = 0) -> Evidence:
    """``window`` label-only queries by the attacker (both examples first), a copy fitted on its answers and
    judged on ``holdout`` other inputs labelled through ``assessor``, as balanced accuracy against the
    always-majority baseline; with ``curve_queries`` the attacker goes on past the window for the curve of
    fidelity against answers."""
    started = time.perf_counter()
    stolen = Labeller(attacker, profile)
    try:
        informative_rows(stolen, window, seed=21, with_examples=True)
    except BudgetSpent:
        pass
    if stolen.first_status == 429:
        raise NotAssessed("not assessed (budget): the extractor's planned fresh window was already spent")
    if not stolen.labels or not stolen.labels[0] or stolen.chosen["the examples"] < 2:
        raise NotAssessed(f"not assessed: the extractor's first requests (the two examples) were not answered "
                          f"{profile.positive!r} and another label (first status {stolen.first_status})")
    in_window = len(stolen.rows)
    window_labels = list(stolen.labels)
    if curve_queries > window:
        informative_rows(stolen, curve_queries - window, seed=22)
    assessed = Labeller(assessor, profile)
    try:
        informative_rows(assessed, holdout, seed=2024)
    except BudgetSpent:
        pass
    truth = np.array(assessed.labels, dtype=int)
    tried = (f"{assessed.sent} held-out queries ({', '.join(f'{n} {k}' for k, n in assessed.chosen.items())}; "
             f"{assessed.boundary_points} boundary points found by bisection between copies of the two examples), "
             f"{in_window} of {stolen.sent} extraction queries answered ({window_labels.count(True)} {profile.positive!r})")
    if len(assessed.rows) < min(holdout, HOLDOUT[0]) * 0.8:
        raise NotAssessed(f"not assessed: {len(assessed.rows)} of {assessed.sent} held-out queries answered; {tried}")
    if len(set(truth.tolist())) < 2 or len(set(window_labels)) < 2:
        one = "held-out" if len(set(truth.tolist())) < 2 else "extraction window's"
        raise Inconclusive(f"not assessed (inconclusive): every {one} answer had one label, so fidelity cannot be "
                           f"told from the always-majority baseline; tried {tried}")
    judged = _judge(profile, stolen.rows[:in_window], window_labels, assessed.rows, truth)
    majority = float(max(np.mean(truth), 1 - np.mean(truth)))
    curves = _curves(profile, stolen, assessed.rows, truth) if curve_queries > window else {}
    return _extraction_evidence(profile, window, judged, majority, stolen, assessed, in_window, window_labels,
                                truth, curves, round(time.perf_counter() - started, 3))


def _extraction_evidence(profile, window, judged, majority, stolen, assessed, in_window, window_labels, truth,
                         curves, seconds) -> Evidence:
    positive = repr(profile.positive)
    fidelity = (f"balanced accuracy {judged['balanced']:.1%}: {judged['positive']:.1%} of the inputs answered {positive}, "
                f"{judged['negative']:.1%} of the others")
    return Evidence(
        attack_succeeded=judged["balanced"] >= EXTRACTION_THRESHOLD and judged["agreement"] > majority,
        queries=stolen.sent + assessed.sent,
        summary=(f"a {judged['surrogate']} copy fitted on {in_window} label-only answers from one window of {window} "
                 f"agrees with the target on {judged['agreement']:.1%} of {len(assessed.rows)} held-out inputs "
                 f"({fidelity}; always-majority agrees on {majority:.1%}, balanced 50%)"
                 + (f"; balanced accuracy by answers {curves['labels only']}" if curves else "")),
        residual=(f"one rate-limit window ({window} label-only queries) buys a copy with {fidelity} (held out; "
                  "always-majority 50%)"),
        measurements={"answered_in_window": in_window, "limit_per_window": window, "answered": len(stolen.rows),
                      "balanced_accuracy": round(judged["balanced"], 4), "agreement": round(judged["agreement"], 4),
                      "majority_agreement": round(majority, 4), "fidelity_on_positive_rows": round(judged["positive"], 4),
                      "fidelity_on_negative_rows": round(judged["negative"], 4),
                      "window_answers_positive": window_labels.count(True),
                      "window_answers_negative": window_labels.count(False), "holdout_rows": len(assessed.rows),
                      "holdout_positive_rows": int(np.sum(truth == 1)), "holdout_negative_rows": int(np.sum(truth == 0)),
                      "threshold_balanced_accuracy": EXTRACTION_THRESHOLD, "seconds": seconds},
        charts=[{"kind": "line", "title": "Copy fidelity against answered queries (labels vs scores)",
                 "xlabel": "answered queries (log)", "ylabel": "balanced accuracy against the target", "logx": True,
                 "series": {name: _series(curve) for name, curve in curves.items()}}] if curves else [],
        details={"surrogate": judged["surrogate"], "extraction_inputs": dict(stolen.chosen),
                 "holdout_inputs": dict(assessed.chosen), "positive_share_in_holdout": round(float(np.mean(truth)), 4),
                 "positive_share_in_window": round(window_labels.count(True) / len(window_labels), 4),
                 "balanced_accuracy_by_answers": curves})
