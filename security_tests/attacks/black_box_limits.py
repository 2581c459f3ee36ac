"""Black-box HIGH-1: is the promised limit held, per key and per address, from a target profile alone.

It needs a window nobody else spent: the plan gives it its own key and source address. A first
request that is already refused means the window was not fresh, which is reported not assessed.
"""

from __future__ import annotations

from security_tests.targets.profile import TargetProfile
from security_tests.attacks.client import require_answer
from security_tests.attacks.client import exchange
from security_tests.contract import Evidence, NotAssessed

BYPASS_PROBES = 3


def flood_extra(limit: int) -> int:
    return max(5, limit // 5)


def _flood(client, payload: dict, n: int, offset: int = 0) -> dict:
    """``offset`` requests were sent before this flood in the same window (for the refusal's position)."""
    statuses, answered, first_refused, retry_after, sample = {}, 0, None, None, None
    for index in range(n):
        answer = client.predict(payload)
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        if answer.ok:
            answered += 1
        elif first_refused is None:
            first_refused, retry_after = index + 1, answer.headers.get("Retry-After")
            sample = exchange("The first refused request and its response", payload, answer)
    return {"answered": answered, "statuses": statuses, "first_refused_at": first_refused and first_refused + offset,
            "retry_after": retry_after, "sample": sample}


def rate_limit(fresh, same_key_elsewhere, other_key_same_address, profile: TargetProfile) -> Evidence:
    """``limit + extra`` requests on a fresh key and address; then the same key from another address and
    another key from the same address, which a limit per key and per address must both refuse."""
    limit, payload = profile.rate_limit, profile.negative_example
    first = fresh.predict(payload)
    if first.status == 429:
        raise NotAssessed("not assessed (budget): the first request of the planned fresh window was refused "
                          "with 429, so the window had been spent before this test")
    require_answer(first, "the first request of the window")
    flood = _flood(fresh, payload, limit + flood_extra(limit) - 1, offset=1)
    answered = flood["answered"] + 1
    refusals = {s: n for s, n in flood["statuses"].items() if s != 200}
    if answered <= limit and set(refusals) - {429}:
        raise NotAssessed(f"not assessed: after {answered} answers the target refused with {refusals}, not 429")
    bypass = {}
    for name, client in (("same key, another address", same_key_elsewhere),
                         ("another key, the same address", other_key_same_address)):
        if client is not None:
            bypass[name] = sum(client.predict(payload).ok for _ in range(BYPASS_PROBES))
    escaped = {name: n for name, n in bypass.items() if n}
    sent = limit + flood_extra(limit) + BYPASS_PROBES * len(bypass)
    return Evidence(
        attack_succeeded=answered > limit or bool(escaped), queries=sent,
        summary=(f"{answered} of {limit + flood_extra(limit)} requests answered on one key and address "
                 f"(promised {limit} per {profile.rate_window})"
                 + (f", first refusal at {flood['first_refused_at']} (Retry-After {flood['retry_after']})"
                    if flood["first_refused_at"] else ", none refused")
                 + "; after the window was spent: " + (", ".join(f"{k} {v} of {BYPASS_PROBES} answered"
                                                               for k, v in bypass.items()) or "no bypass tried")),
        samples=[flood["sample"]] if flood["sample"] else [],
        measurements={"answered": answered, "limit": limit, "first_refused_at": flood["first_refused_at"],
                      **{f"bypass.{k}": v for k, v in bypass.items()}},
        details={"statuses": {**flood["statuses"], 200: flood["statuses"].get(200, 0) + 1},
                 "retry_after": flood["retry_after"], "bypass_answered": bypass,
                 "not_tried": [] if len(bypass) == 2 else ["another key from the same address (one key given)"]})
