"""CRIT-2, the whole family: does anything in an answer carry the score, and what does hiding it cost an
attacker who probes with labels alone?

Hiding the probability field is not enough if the score comes back under another name, in a header, as a
coarse bucket, in the length of the body or on the next status page. So whole answers are compared:
status, every body field and every header, across inputs with very different scores but the same label,
after a repeated input has shown what varies on its own (a request id). Boundary probing measures the
other side: a sweep of each feature shows the score where it is exposed, and a label-only bisection finds
where the label flips in about log2(range / tolerance) queries whether or not it is; that number is the
residual risk of hiding the score. Everything is read from the target profile.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from security_tests.attacks.client import Answer, Client, exchange, require_answer
from security_tests.budget import Need, spends
from security_tests.contract import Evidence
from security_tests.generated_inputs import JSON_VALUES, LIVE_EXAMPLES, near_rows, search, valid_rows
from security_tests.targets.profile import FieldSpec, TargetProfile, reach

PER_LABEL = 6
SWEEP_POINTS = 8
WHOLE_SWEEP = 24
"""An integer feature with at most this many values in its typical range is swept value by value (hours)."""
TIME_HEADERS = frozenset({"date", "expires", "last-modified", "age", "keep-alive", "connection"})


def _flat(value, prefix: str) -> dict[str, object]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}.{key}").items()}
    if isinstance(value, list):
        return {k: v for index, item in enumerate(value) for k, v in _flat(item, f"{prefix}[{index}]").items()}
    return {prefix: value}


def fields(answer: Answer) -> dict[str, object]:
    """An answer flattened: status, each body field by path, each header by lower-case name (clock headers
    left out: they change with the second, not with the input)."""
    return {"status": answer.status, **_flat(answer.body, "body"),
            **{f"header.{name.lower()}": value for name, value in answer.headers.items()
               if name.lower() not in TIME_HEADERS}}


def _label_field(profile: TargetProfile) -> str:
    return "body." + ".".join(profile.label_path)


def score_like(value) -> bool:
    """A probability in disguise: a JSON fraction in [0, 1], or a number strictly between 0 and 1 in any form."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return 0.0 <= value <= 1.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return 0.0 < number < 1.0


def score_fields(answer: Answer, profile: TargetProfile) -> dict[str, object]:
    """Every field of the body beside the label that reads as a score, and the profile's ``score`` field
    whatever it holds (a percentage or a rounded 0/1 reads as no fraction, but it is the field to hide)."""
    label = _label_field(profile)
    found = {path: value for path, value in _flat(answer.body, "body").items() if path != label and score_like(value)}
    if profile.score_path is not None and reach(answer.body, profile.score_path) is not None:
        named = _flat_path(answer.body, profile.score_path)
        found[named] = _flat(answer.body, "body").get(named, reach(answer.body, profile.score_path))
    return found


def _flat_path(body, path: tuple[str, ...]) -> str:
    """A dotted profile path in ``_flat``'s spelling (``body.results[0].risk``)."""
    spelled, value = "body", body
    for part in path:
        if isinstance(value, list):
            spelled, value = f"{spelled}[{part}]", value[int(part)]
        else:
            spelled, value = f"{spelled}.{part}", value[part]
    return spelled


class _Counter:
    """Asks for one feature changed from the base input; counts every request it sends."""

    def __init__(self, client: Client, profile: TargetProfile, base: dict) -> None:
        self.client, self.profile, self.base, self.queries = client, profile, base, 0
        self.scores: dict[str, object] = {}
        self.sample = None

    def ask(self, name: str, value) -> tuple[object, float | None]:
        payload = dict(self.base, **{name: value})
        answer = self.client.predict(payload)
        self.queries += 1
        if self.sample is None:
            self.sample = exchange("A probing request and its response", payload, answer)
        if not answer.ok:
            return None, None
        scores = score_fields(answer, self.profile)
        self.scores.update(scores)
        score = next(iter(scores.values()), None)
        return answer.label, float(score) if score is not None else None


def bisect_flip(ask: Callable, feature: FieldSpec, start, end, tolerance) -> dict:
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


def sweep_values(feature: FieldSpec) -> list:
    """What an attacker walks a feature through: its typical range, high to low."""
    low, high = feature.typical_range
    if feature.type in ("int", "bool") and high - low + 1 <= WHOLE_SWEEP:
        values = [feature.cast(v) for v in range(int(math.ceil(low)), int(math.floor(high)) + 1)]
    else:
        values = [feature.clip(low + (high - low) * i / (SWEEP_POINTS - 1)) for i in range(SWEEP_POINTS)]
    return list(dict.fromkeys(reversed(values)))


def tolerance(feature: FieldSpec) -> float:
    """Where the bisection stops: one step of an integer, a hundredth of a meaningful step of a float."""
    return 1 if feature.type in ("int", "bool") else max(feature.meaningful_step / 100, feature.resolution)


def _probe_feature(counter: _Counter, feature: FieldSpec, base: dict) -> dict:
    """A sweep, two queries to pick the direction the label flips in, then the label-only bisection."""
    curve = []
    for value in sweep_values(feature):
        label, score = counter.ask(feature.name, value)
        curve.append({"value": value, "label": label, "score": score})
    sweep_queries = counter.queries
    low, start = feature.cast(feature.lowest), base[feature.name]
    label_low, _ = counter.ask(feature.name, low)
    label_start, _ = counter.ask(feature.name, start)
    end = low if label_low != label_start else feature.cast(feature.highest)
    search_started = counter.queries
    step = tolerance(feature)
    found = bisect_flip(counter.ask, feature, start, end, step)
    found["queries"] = counter.queries - search_started
    found["searched_range"] = [min(start, end), max(start, end)]
    found["tolerance"] = step
    found["log2_range_over_tolerance"] = round(math.log2(max(abs(end - start), 1) / step), 2)
    return {"sweep": curve, "sweep_queries": sweep_queries, "direction_queries": 2, "label_only_search": found,
            "queries": counter.queries}


def _charts(features: dict, profile: TargetProfile, score_name: str | None) -> list[dict]:
    swept = sorted(features, key=lambda name: -len(features[name]["sweep"]))[:2]
    positive = profile.positive
    return [{
        "kind": "line", "title": f"Probing {name} from the positive example", "xlabel": name, "ylabel": "response",
        "series": {f"label (1 = {positive})": [[p["value"] for p in f["sweep"]],
                                               [int(p["label"] == positive) if p["label"] is not None else None
                                                for p in f["sweep"]]],
                   **({score_name: [[p["value"] for p in f["sweep"]], [p["score"] for p in f["sweep"]]]}
                      if score_name else {})},
    } for name, f in features.items() if name in swept]


def _probing_need(profile: TargetProfile) -> Need:
    per_feature = [len(sweep_values(f)) + 4 + math.ceil(math.log2(max(f.highest - f.lowest, 1) / tolerance(f)))
                   for f in profile.fields]
    return Need("", sum(per_feature), sum(per_feature),
                why="a sweep of each feature and a label-only bisection of where its label flips")


@spends(_probing_need)
def probe_boundaries(client: Client, profile: TargetProfile) -> Evidence:
    """From the positive example, one feature at a time: the attack succeeds when any answer carries a score."""
    base = profile.positive_example
    features, samples, scores = {}, [], {}
    for feature in profile.fields:
        counter = _Counter(client, profile, base)
        features[feature.name] = _probe_feature(counter, feature, base)
        scores.update(counter.scores)
        samples = samples or [counter.sample]
    total = sum(f["queries"] for f in features.values())
    flips = {name: f["label_only_search"] for name, f in features.items() if f["label_only_search"]["flipped"]}
    blocked = any(f["label_only_search"].get("blocked") for f in features.values())
    flip_text = "; ".join(f"{name} flips between {f['last_base_label_value']} and {f['first_flipped_value']} "
                          f"({f['queries']} label-only queries)" for name, f in flips.items()) or "no flip found"
    score_name = next(iter(scores), None)
    return Evidence(
        attack_succeeded=bool(scores),
        summary=(f"score {'EXPOSED as ' + ', '.join(sorted(scores)) if scores else 'not returned'} in {total} "
                 f"queries; label-only: {flip_text}"),
        queries=total, samples=samples, charts=_charts(features, profile, score_name.rsplit(".", 1)[-1]
                                                       if score_name else None),
        measurements={f"label_only_queries.{name}": f["label_only_search"]["queries"] for name, f in features.items()},
        details={"base_input": base, "score_exposed": bool(scores), "score_fields": sorted(scores),
                 "features": features, "blocked": blocked,
                 "flip_points": {name: [f["last_base_label_value"], f["first_flipped_value"]]
                                 for name, f in flips.items()}})


LIVE_ROWS = 3 * PER_LABEL


def spread_in_feature_space(profile: TargetProfile, n: int = LIVE_ROWS, seed: int = 31) -> list[dict]:
    """Without the model (a live target): the two examples, inputs on the line between them (where a score
    moves through its whole range) and inputs over the typical ranges; the service's own labels group them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    positive = np.array(profile.vector(profile.positive_example))
    negative = np.array(profile.vector(profile.negative_example))
    between = [profile.row(negative + t * (positive - negative)) for t in np.linspace(0.1, 0.9, (n - 2) // 2)]
    typical = [profile.row([rng.uniform(*spec.typical_range) for spec in profile.fields])
               for _ in range(n - 2 - len(between))]
    return [profile.positive_example, profile.negative_example, *between, *typical]


def _with_health(answer: Answer, health: Answer | None) -> Answer:
    """The answer plus what the status page said right after it: it must not echo the last score."""
    if health is None:
        return answer
    headers = {**answer.headers, **{f"health-{k}": v for k, v in health.headers.items()
                                    if k.lower() != "x-request-id" and k.lower() not in TIME_HEADERS}}
    return answer._replace(headers={**headers, "health-body": json.dumps(health.body, sort_keys=True)})


def _varying(answers: list[Answer]) -> set[str]:
    flats = [fields(a) for a in answers]
    names = set().union(*flats)
    return {name for name in names if len({repr(f.get(name, "<absent>")) for f in flats}) > 1}


def _leak_need(profile: TargetProfile) -> Need:
    rows = LIVE_ROWS
    return Need("", rows + 4, rows + 4, keyless=rows if profile.health_path else 0,
                why="both examples twice, then inputs far apart, each followed by the status page")


@spends(_leak_need)
def score_leak(client: Client, profile: TargetProfile, rows: list[dict]) -> Evidence:
    """Both examples twice (what varies on its own), then every row; a field that varies within a label, or
    reads as a score, leaks."""
    pairs = [[client.predict(example) for _ in range(2)] for example in (profile.positive_example,
                                                                           profile.negative_example)]
    for pair in pairs:
        for answer in pair:
            require_answer(answer, "an example")
    noise = set().union(*(_varying(pair) for pair in pairs))
    answers = []
    for row in rows:
        answers.append(client.predict(row))
        health = client.get(profile.health_path) if profile.health_path else None
        answers[-1] = _with_health(answers[-1], health)
    refused = [a.status for a in answers if not a.ok]
    labels = sorted({str(a.label) for a in answers if a.ok})
    groups = {label: [a for a in answers if a.ok and str(a.label) == label] for label in labels}
    leaks = {label: sorted(_varying(group) - noise) for label, group in groups.items() if len(group) > 1}
    scores = sorted({path for a in answers + pairs[0] + pairs[1] if a.ok for path in score_fields(a, profile)})
    examples = {label: {name: [fields(a).get(name) for a in groups[label]][:PER_LABEL] for name in names[:3]}
                for label, names in leaks.items() if names}
    leaked = sorted({name for names in leaks.values() for name in names} | set(scores))
    positive = str(profile.positive)
    return Evidence(
        attack_succeeded=bool(leaked), queries=2 * len(rows) + 4 if profile.health_path else len(rows) + 4,
        summary=(f"{len(rows)} inputs far apart in score; within one label "
                 + (f"these vary with the input or read as a score: {', '.join(leaked)}" if leaked else
                    "every answer is identical (status, body, headers, the status page)")
                 + f" (ignored as varying on their own: {', '.join(sorted(noise)) or 'none'})"),
        samples=[exchange("An answer to the positive example", profile.positive_example, pairs[0][0])],
        measurements={"rows": len(rows), "answers_negative": sum(len(g) for l, g in groups.items() if l != positive),
                      "answers_positive": len(groups.get(positive, [])), "fields_varying_within_a_label": len(leaked)},
        details={"refused_statuses": refused, "varies_on_its_own": sorted(noise), "varies_within_a_label": leaks,
                 "score_like_fields": scores, "labels_seen": labels, "examples": examples})


def _generated_need(profile: TargetProfile) -> Need:
    return Need("", LIVE_EXAMPLES, LIVE_EXAMPLES, why="generated bodies, valid and not (hypothesis), one request each")


@spends(_generated_need)
def score_in_any_answer(client: Client, profile: TargetProfile, examples: int = LIVE_EXAMPLES) -> Evidence:
    """Valid, near-valid and arbitrary JSON bodies: no answer, refusals included, carries a score, and no
    answer carries a field named like one."""
    label = _label_field(profile)

    def violation(answer: Answer) -> str | None:
        named = [path for path in _flat(answer.body, "body") if answer.ok and path != label
                 and any(word in path.rsplit(".", 1)[-1].lower() for word in ("probab", "score", "confidence"))]
        found = sorted(set(score_fields(answer, profile)) | set(named))
        return f"{', '.join(found)} in a {answer.status} answer" if found else None

    sent, found = search(client, valid_rows(profile) | JSON_VALUES | near_rows(profile), violation, examples)
    return Evidence(
        attack_succeeded=found is not None, queries=sent,
        summary=f"{sent} generated bodies: " + (found["reason"] if found else "no answer carried a score"),
        measurements={"generated_bodies": sent}, details={"counterexample": found})
