"""HIGH-3: label-only evasion. From inputs the target answers with its positive label, find changes of the
caller's own features that turn the answer into another label, asking only for labels.

The attacks run cheapest first, because under a rate limit the cheap ones are what an attacker spends its
window on: a boundary search from the profile's positive example (both ends of every feature's range, a
bisection of each feature that flips the label alone, pairs of range ends if none does); the change it found
applied to many positive inputs, one query each (what the search teaches); a blind search per input, priced in
each feature's meaningful step; and ART's HopSkipJump inside the features' typical ranges. Everything comes
from the target profile, so the same campaign runs in-process and live; a part the planned budget cannot pay
for is left out and said so, and a search cut short with nothing found is not assessed, never "fixed".
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from security_tests.attacks.client import Client, require_answer
from security_tests.budget import Need, spends
from security_tests.contract import BudgetSpent, Evidence, NotAssessed
from security_tests.targets.profile import FieldSpec, TargetProfile

ROWS = 20
ROW_QUERIES = 60
LIVE_SEARCHED_ROWS = 3
"""Rows the planned budget pays a blind search for (in-process every row is searched until refused)."""
MAX_REFUSED = 10
HSJ_QUERIES = 200
HSJ_MINIMUM = 100


def movable(profile: TargetProfile) -> tuple[FieldSpec, ...]:
    """The features an attacker can change (``attacker_controls``, all by default): the only ones moved."""
    return tuple(f for f in profile.fields if f.attacker_controls)


def search_box(profile: TargetProfile) -> tuple[np.ndarray, np.ndarray]:
    """Where an attacker who knows the domain searches: each feature's typical range, inside what is accepted (a
    feature the attacker does not control keeps its whole range, so its own value is never clipped)."""
    low = np.array([max(f.lowest, f.typical_range[0]) if f.attacker_controls else f.lowest for f in profile.fields],
                   dtype=float)
    high = np.array([min(f.highest, f.typical_range[1]) if f.attacker_controls else f.highest for f in profile.fields],
                    dtype=float)
    return low, high


def positive_rows(profile: TargetProfile, n: int = ROWS, seed: int = 4242) -> list[dict]:
    """Inputs the attacker wants through: the positive example with each feature moved up to two meaningful
    steps, inside its typical range."""
    rng = np.random.default_rng(seed)
    base = np.array(profile.vector(profile.positive_example), dtype=float)
    steps = np.array([f.meaningful_step for f in profile.fields], dtype=float)
    low, high = search_box(profile)
    moved = base + rng.integers(-2, 3, (n, len(base))) * steps
    return [profile.row(np.clip(vector, np.minimum(low, base), np.maximum(high, base))) for vector in moved]


def describe(change: dict, base: dict) -> str:
    """A change in the profile's own feature names: ``hour_of_day 2 -> 6``."""
    return ", ".join(f"{name} {base[name]} -> {value}" for name, value in change.items())


def _units(profile: TargetProfile, base: dict, change: dict) -> float:
    return sum(abs(float(v) - float(base[f.name])) / f.meaningful_step for f in profile.fields
               for n, v in change.items() if f.name == n)


class _Asker:
    def __init__(self, client: Client, base: dict) -> None:
        self.client, self.base, self.queries = client, base, 0

    def negative(self, change: dict) -> bool | None:
        """True when the changed input is answered with a label other than the positive one."""
        answer = self.client.predict({**self.base, **change})
        self.queries += 1
        return None if not answer.ok else not answer.positive


def _bisect(ask: _Asker, spec: FieldSpec, start: float, end: float) -> dict:
    """Between ``start`` (positive) and ``end`` (not): the value closest to ``start`` still not positive,
    to one meaningful step."""
    positive, negative = start, end
    while abs(float(negative) - float(positive)) > spec.meaningful_step:
        middle = spec.cast((float(positive) + float(negative)) / 2)
        if float(middle) in (float(positive), float(negative)):
            break
        if ask.negative({spec.name: middle}):
            negative = middle
        else:
            positive = middle
    return {"last_positive": positive, "first_negative": negative}


def _ends(ask: _Asker, profile: TargetProfile) -> dict[str, list]:
    flips: dict[str, list] = {}
    for spec in movable(profile):
        for end in (spec.lowest, spec.highest):
            value = spec.cast(end)
            if value != ask.base[spec.name] and ask.negative({spec.name: value}):
                flips.setdefault(spec.name, []).append(value)
    return flips


def _pairs(ask: _Asker, profile: TargetProfile) -> dict | None:
    for a, b in itertools.combinations(movable(profile), 2):
        for va, vb in itertools.product((a.lowest, a.highest), (b.lowest, b.highest)):
            change = {a.name: a.cast(va), b.name: b.cast(vb)}
            if ask.negative(change):
                return change
    return None


def boundary_search(client: Client, profile: TargetProfile) -> dict:
    """The cheapest change (in meaningful steps) that moves the positive example off its label."""
    base = profile.positive_example
    ask, flips, pair, cut_short = _Asker(client, base), {}, None, False
    try:
        flips = {name: {"ends_answered_negative": ends, "first_negative": ends[0]}
                 for name, ends in _ends(ask, profile).items()}
        for name, found in flips.items():
            spec = next(f for f in profile.fields if f.name == name)
            found.update(_bisect(ask, spec, base[name], found["first_negative"]))
        pair = None if flips else _pairs(ask, profile)
    except BudgetSpent:
        cut_short = True
    change = min(({n: f["first_negative"]} for n, f in flips.items()), key=lambda c: _units(profile, base, c),
                 default=pair)
    if change is None and cut_short:
        raise BudgetSpent(f"not assessed (budget): the boundary search was cut short after {ask.queries} "
                          "queries with no evasion found")
    confirmed = False
    try:
        confirmed = bool(change) and ask.negative(change) is True
    except BudgetSpent:
        pass
    return {"change": change, "confirmed": confirmed, "queries": ask.queries, "flips": flips,
            "units": round(_units(profile, base, change), 2) if change else None}


def boundary_queries(profile: TargetProfile) -> tuple[int, int]:
    """(minimum, most) queries of the boundary search: the example and both ends of every feature; then a
    bisection to one meaningful step per feature, pairs of range ends and the confirmation."""
    fields = movable(profile)
    ends = 1 + 2 * len(fields)
    bisections = sum(max(1, math.ceil((f.highest - f.lowest) / f.meaningful_step).bit_length()) for f in fields)
    pairs = 4 * len(fields) * (len(fields) - 1) // 2
    return ends, ends + bisections + pairs + 1


def informed_evasion(client: Client, profile: TargetProfile, rows: list[dict], change: dict) -> Evidence:
    """What the boundary search teaches: apply its change to each positive input, one query each."""
    evaded = 0
    for row in rows:
        answer = client.predict({**row, **change})
        evaded += answer.positive is False
    text = ", ".join(f"{name} set to {value}" for name, value in change.items())
    return Evidence(attack_succeeded=evaded > len(rows) / 2, queries=len(rows),
                    summary=f"{text}: {evaded} of {len(rows)} evaded, one query each",
                    measurements={"evaded": evaded, "rows": len(rows)}, details={"change": change})


def _steps(profile: TargetProfile) -> dict[str, int]:
    """How far the blind search moves each feature: half its typical range, at most 20 meaningful steps."""
    return {f.name: max(1, min(20, math.ceil((f.typical_range[1] - f.typical_range[0]) / f.meaningful_step / 2)))
            for f in profile.fields}


def _moves(profile: TargetProfile, row: dict, spec: FieldSpec) -> list[tuple[int, object]]:
    moves = []
    for step in range(1, _steps(profile)[spec.name] + 1):
        for sign in (1, -1):
            value = spec.cast(row[spec.name] + sign * step * spec.meaningful_step)
            if spec.contains(value) and value != row[spec.name]:
                moves.append((step, value))
    return moves


def candidates(profile: TargetProfile, row: dict):
    """Changes of one feature, then of two, cheapest first, priced in meaningful steps."""
    singles = [(cost, {f.name: value}) for f in movable(profile) for cost, value in _moves(profile, row, f)]
    yield from sorted(singles, key=lambda c: c[0])
    pairs = []
    for a, b in itertools.combinations(movable(profile), 2):
        for (ca, va), (cb, vb) in itertools.product(_moves(profile, row, a)[:6], _moves(profile, row, b)[:6]):
            pairs.append((ca + cb, {a.name: va, b.name: vb}))
    yield from sorted(pairs, key=lambda c: c[0])


def evade_row(client: Client, profile: TargetProfile, row: dict, budget: int = ROW_QUERIES) -> dict:
    """The blind search for one input; every evasion is confirmed by a second query."""
    queries = 0
    for cost, change in candidates(profile, row):
        if queries >= budget:
            break
        answer = client.predict({**row, **change})
        queries += 1
        if not answer.ok:
            return {"evaded": False, "queries": queries, "blocked_status": answer.status}
        if answer.positive is False:
            confirm = client.predict({**row, **change})
            queries += 1
            if confirm.positive is False:
                return {"evaded": True, "queries": queries, "cost": cost,
                        "change": {k: [row[k], v] for k, v in change.items()}}
    return {"evaded": False, "queries": queries}


def _search_summary(searched: list[dict]) -> dict:
    evaded = [s for s in searched if s["evaded"]]
    features_moved: dict[str, int] = {}
    for s in evaded:
        key = "+".join(sorted(s["change"]))
        features_moved[key] = features_moved.get(key, 0) + 1
    return {"search_evaded": len(evaded), "searched_rows": len(searched), "features_moved": features_moved,
            "search_queries_median": float(np.median([s["queries"] for s in searched])) if searched else 0.0,
            "search_blocked_rows": sum("blocked_status" in s for s in searched),
            "example_changes": [s["change"] for s in evaded[:5]]}


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def hopskipjump_campaign(client: Client, profile: TargetProfile, rows: list[dict], max_iter: int = 5,
                         max_eval: int = 50, init_eval: int = 10, init_size: int = 50) -> Evidence:
    """ART's HopSkipJump (decision-based, labels only) as an independent second evasion attack, inside each
    feature's typical range (``search_box``): every query is cast and clipped as the profile says, a refused
    query counts as positive, and more than ``MAX_REFUSED`` refusals stop it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

    low, high = search_box(profile)
    asked, refused = [0], [0]

    def predict(batch: np.ndarray) -> np.ndarray:
        labels = []
        for x in np.asarray(batch, dtype=float):
            answer = client.predict(profile.row(np.clip(x, low, high)))
            asked[0] += 1
            if not answer.ok:
                refused[0] += 1
                if refused[0] > MAX_REFUSED:
                    raise _Refused(answer.status)
            labels.append(0 if answer.positive is False else 1)
        return np.eye(2)[labels]

    X = np.clip(np.array([profile.vector(r) for r in rows], dtype=float), low, high)
    budget = {"max_iter": max_iter, "max_eval": max_eval, "init_eval": init_eval, "init_size": init_size,
              "search_box": {f.name: [lo, hi] for f, lo, hi in zip(profile.fields, low.tolist(), high.tolist())}}
    classifier = BlackBoxClassifier(predict, input_shape=(len(low),), nb_classes=2, clip_values=(low, high))
    attack = HopSkipJump(classifier, targeted=False, max_iter=max_iter, max_eval=max_eval, init_eval=init_eval,
                         init_size=init_size, norm=2, verbose=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adversarial = attack.generate(X, mask=np.array([float(f.attacker_controls) for f in profile.fields]))
        final = [client.predict(profile.row(x)) for x in adversarial]
    except _Refused as refusal:
        return Evidence(attack_succeeded=False, queries=asked[0],
                        summary=f"HopSkipJump stopped after {asked[0]} queries: the service refused with "
                                f"{refusal.status}", details={"rows": len(rows), "blocked_status": refusal.status,
                                                              "budget": budget})
    except BudgetSpent:
        return Evidence(attack_succeeded=False, queries=asked[0],
                        summary=f"HopSkipJump stopped after {asked[0]} queries: the planned budget was spent",
                        details={"rows": len(rows), "budget_spent": True, "budget": budget})
    return _hopskipjump_result(profile, rows, adversarial, final, asked[0], budget)


def _hopskipjump_result(profile: TargetProfile, rows: list[dict], adversarial: np.ndarray, final: list,
                        spent: int, budget: dict) -> Evidence:
    """The evasions the service confirms when asked once more for each adversarial input."""
    evaded = [a.positive is False for a in final]
    found = [profile.row(x) for x in adversarial]
    moved = {f.name: sum(1 for row, adv, ok in zip(rows, found, evaded) if ok and adv[f.name] != row[f.name])
             for f in profile.fields}
    per_row = spent / len(rows)
    return Evidence(
        attack_succeeded=sum(evaded) / len(rows) > 0.5, queries=spent + len(final),
        summary=f"HopSkipJump evaded {sum(evaded)} of {len(rows)} inputs answered {profile.positive!r}, "
                f"{per_row:.0f} label-only queries each; features changed: {moved}",
        residual=f"HopSkipJump (label-only) evades {sum(evaded)} of {len(rows)} in {per_row:.0f} queries per input",
        measurements={"rows": len(rows), "evaded": int(sum(evaded)), "success_rate": round(sum(evaded) / len(rows), 4),
                      "queries_per_row": round(per_row, 1)},
        details={"features_changed_in_evading_rows": moved, "budget": budget,
                 "examples": [{"from": row, "to": adv} for row, adv in zip(rows[:3], found[:3])]})


class _Counting:
    """Counts what the campaign sends through one client, refusals included."""

    def __init__(self, client: Client) -> None:
        self.client, self.sent = client, 0
        self.profile = getattr(client, "profile", None)

    @property
    def remaining(self) -> int | None:
        return getattr(self.client, "remaining", None)

    def predict(self, payload=None, headers=None, **kwargs):
        answer = self.client.predict(payload, headers, **kwargs)
        self.sent += 1
        return answer


def _campaign_need(profile: TargetProfile) -> Need:
    least, most = boundary_queries(profile)
    return Need("", least, most + 2 * ROWS + LIVE_SEARCHED_ROWS * ROW_QUERIES + HSJ_QUERIES,
                why="the positive example and both ends of every feature; then the learned change on "
                    f"{ROWS} positive inputs, blind searches and HopSkipJump as the budget allows")


@spends(_campaign_need)
def evasion_campaign(client: Client, profile: TargetProfile, rows: list[dict] | None = None) -> Evidence:
    """The boundary search from the positive example, its change on ``rows`` (default: ``positive_rows``), a
    blind search per row (live: the first ``LIVE_SEARCHED_ROWS``) and HopSkipJump from the positive example,
    each while the budget lasts."""
    counted = _Counting(client)
    first = require_answer(counted.predict(profile.positive_example), "the positive example")
    if not first.positive:
        raise NotAssessed(f"not assessed: the positive example was answered {first.label!r}, not "
                          f"{profile.positive!r}; fix examples.positive in the profile")
    search = boundary_search(counted, profile)
    rows = positive_rows(profile) if rows is None else rows
    detected, informed, searched, left_out = [], None, [], []
    try:
        detected = [row for row in rows if counted.predict(row).positive]
        if search["change"]:
            informed = informed_evasion(counted, profile, detected, search["change"])
    except BudgetSpent:
        left_out.append("the learned change on every positive input")
    paid = len(detected) if counted.remaining is None else min(len(detected), LIVE_SEARCHED_ROWS)
    try:
        for row in detected[:paid]:
            searched.append(evade_row(counted, profile, row))
    except BudgetSpent:
        pass
    if len(searched) < len(detected):
        left_out.append(f"the blind search of {len(detected) - len(searched)} inputs")
    hsj = _campaign_hopskipjump(counted, profile)
    return _campaign_evidence(profile, search, rows, detected, informed, _search_summary(searched), hsj,
                              left_out, counted.sent)


def _campaign_hopskipjump(client: _Counting, profile: TargetProfile) -> dict:
    left = client.remaining
    if left is not None and left < HSJ_MINIMUM:
        return {"run": False, "reason": f"not run (budget): {left} planned queries left, it needs about {HSJ_MINIMUM}"}
    found = hopskipjump_campaign(client, profile, [profile.positive_example], max_iter=3, max_eval=30,
                                 init_eval=10, init_size=30)
    stopped = found.details.get("blocked_status") or found.details.get("budget_spent")
    return {"run": True, "evaded": found.attack_succeeded, "queries": found.queries, "summary": found.summary,
            **({"reason": "stopped early"} if stopped else {}), **{k: v for k, v in found.details.items()
                                                                     if k != "budget"}}


def _campaign_evidence(profile, search, rows, detected, informed, blind, hsj, left_out, sent) -> Evidence:
    base, change = profile.positive_example, search["change"]
    n = len(detected)
    informed_evaded = informed.measurements["evaded"] if informed else 0
    informed_rate = informed_evaded / n if n else 0.0
    search_rate = blind["search_evaded"] / n if n else 0.0
    succeeded = max(informed_rate, search_rate) > 0.5 if n else bool(change)
    found = (f"changing {describe(change, base)} turns {profile.positive!r} into another label"
             + (" (confirmed by a second query)" if search["confirmed"] else " (not confirmed: no budget left)")
             if change else "no single feature or pair of range ends changes the label")
    summary = (f"boundary search from the positive example, {search['queries']} label-only queries: {found}; "
               + (f"learned change on {n} inputs answered {profile.positive!r}: {informed.summary}; " if informed else "")
               + (f"blind search evaded {blind['search_evaded']} of {blind['searched_rows']} searched inputs "
                  f"(median {blind['search_queries_median']:.0f} queries, moves: {blind['features_moved']}, "
                  f"{blind['search_blocked_rows']} cut off by refusals); " if blind["searched_rows"] else "")
               + "HopSkipJump: "
               + (hsj["summary"] if hsj["run"] else hsj["reason"])
               + (f"; left out for the budget: {', '.join(left_out)}" if left_out else ""))
    residual = (f"changing {describe(change, base)} evades detection for {informed_evaded} of {n} inputs answered "
                f"{profile.positive!r}, one query each, labels only" if informed
                else f"changing {describe(change, base)} evades the model with labels alone" if change else "")
    return Evidence(
        attack_succeeded=succeeded, queries=sent, summary=summary, residual=residual,
        measurements={"positive_rows": len(rows), "detected_before_attack": n,
                      "boundary_search_queries": search["queries"], "features_that_flip_alone": len(search["flips"]),
                      "change_in_meaningful_steps": search["units"], "informed_evaded": informed_evaded,
                      "informed_success_rate": round(informed_rate, 4), "search_evaded": blind["search_evaded"],
                      "search_success_rate": round(search_rate, 4),
                      "search_queries_median": blind["search_queries_median"]},
        details={"base": base, "flips": search["flips"], "cheapest_change": {k: [base[k], v] for k, v in (change or {}).items()},
                 "confirmed": search["confirmed"], "informed_attack": informed.summary if informed else None,
                 **blind, "hopskipjump": hsj, "left_out_for_budget": left_out})
