"""Black-box checks of the front door, from a target profile alone: CRIT-1 (who gets an answer), CRIT-2
(does any part of the answer carry a score), MED-1 (is bad input refused with a 4xx), HIGH-1 (is the
promised limit held per key and per address).

Each check first asserts its precondition (the target answers a valid request with a label); when that
fails it raises ``NotAssessed``, so a finding is never called open or fixed on nothing measured.
"""

from __future__ import annotations

from security_tests.targets.profile import TargetProfile
from security_tests.attacks.client import Answer, exchange, require_answer
from security_tests.attacks.schema_inputs import malformed_cases
from security_tests.contract import Evidence, NotAssessed

TIME_HEADERS = {"date", "expires", "last-modified", "age", "content-length", "retry-after", "set-cookie",
                "keep-alive", "connection"}


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flatten(item, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): value}


def _view(answer: Answer) -> dict[str, object]:
    headers = {f"header:{k.lower()}": v for k, v in answer.headers.items() if k.lower() not in TIME_HEADERS}
    return {**_flatten(answer.body), **headers}


def _score_like(value) -> bool:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return False
    return number is not None and 0.0 < number < 1.0 and number not in (0.0, 1.0)


SCORE_PROBE_SHIFTS = (0.1, 0.25)


def _probe_inputs(profile: TargetProfile) -> list[dict]:
    rows = []
    for example in (profile.positive_example, profile.negative_example):
        for shift in SCORE_PROBE_SHIFTS:
            for spec in profile.fields:
                if spec.type == "bool":
                    continue
                moved = float(example[spec.name]) + shift * (spec.highest - spec.lowest) * (
                    1 if float(example[spec.name]) < (spec.lowest + spec.highest) / 2 else -1)
                rows.append({**example, spec.name: spec.clip(moved)})
    return rows


def score_exposure(client, profile: TargetProfile, probes: int = 8) -> Evidence:
    """Every field and header of the answer: numbers strictly between 0 and 1 anywhere, or values that
    differ between inputs given the same label (fields that differ on identical input are left out)."""
    pairs = [[client.predict(example) for _ in range(2)] for example in
             (profile.positive_example, profile.negative_example)]
    for pair in pairs:
        for answer in pair:
            require_answer(answer, "an example")
    unstable = {path for pair in pairs for path in set(_view(pair[0])) | set(_view(pair[1]))
                if _view(pair[0]).get(path) != _view(pair[1]).get(path)}
    answers = [pair[0] for pair in pairs] + [a for a in (client.predict(r) for r in _probe_inputs(profile)[:probes])
                                             if a.ok]
    label_path = ".".join(profile.label_path)
    by_label: dict = {}
    for answer in answers:
        by_label.setdefault(str(answer.label), []).append(_view(answer))
    if max(len(group) for group in by_label.values()) < 2:
        raise NotAssessed("not assessed: fewer than two different inputs were answered with the same label")
    varying = sorted({path for group in by_label.values() for path in set().union(*group)
                      if path not in unstable and path != label_path
                      and len({str(view.get(path)) for view in group}) > 1})
    scores = sorted({path for a in answers for path, v in _view(a).items() if path != label_path and _score_like(v)})
    leaking = sorted(set(varying) | set(scores))
    return Evidence(
        attack_succeeded=bool(leaking), queries=4 + min(probes, len(_probe_inputs(profile))),
        summary=(f"{len(answers)} answers compared: " + (f"score-like fields {leaking}" if leaking
                                                         else "no field beyond the label carries a score")
                 + f"; varying on identical input (left out): {sorted(unstable) or 'none'}"),
        samples=[exchange("An answer to the positive example", profile.positive_example, pairs[0][0])],
        measurements={"answers_compared": len(answers), "score_fields": len(leaking)},
        details={"numbers_between_0_and_1": scores, "varying_within_a_label": varying,
                 "varying_on_identical_input": sorted(unstable), "labels_seen": sorted(by_label)})


def send_malformed(client, profile: TargetProfile) -> Evidence:
    require_answer(client.predict(profile.negative_example), "the negative example")
    results = []
    for name, payload, raw, content_type in malformed_cases(profile):
        answer = client.predict(payload, raw_body=raw, content_type=content_type)
        results.append({"case": name, "status": answer.status, "answered": answer.ok,
                        "response": answer.body if len(str(answer.body)) < 300 else str(answer.body)[:300]})
    limited = [r["case"] for r in results if r["status"] == 429]
    if limited:
        raise NotAssessed(f"not assessed (budget): {len(limited)} malformed inputs were rate-limited (429)")
    not_refused = [r["case"] for r in results if not 400 <= r["status"] < 500]
    crashed = [r["case"] for r in results if r["status"] >= 500]
    return Evidence(
        attack_succeeded=bool(not_refused), queries=len(results) + 1,
        summary=(f"{len(results) - len(not_refused)} of {len(results)} malformed inputs refused with 4xx; "
                 f"accepted: {[c for c in not_refused if c not in crashed] or 'none'}; 5xx: {crashed or 'none'}"),
        measurements={"refused_4xx": len(results) - len(not_refused), "crashed_5xx": len(crashed),
                      "cases": len(results)},
        details={"cases": results, "not_refused": not_refused, "crashed_5xx": crashed})


def malformed_queries(profile: TargetProfile) -> int:
    return len(malformed_cases(profile)) + 1
