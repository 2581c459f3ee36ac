"""HIGH-1: ways around a rate limit that a plain flood does not try.

A boundary burst fits twice a fixed window's limit into one window's length; key guessing and key or
address rotation look for a budget that is not counted at all.
"""

from __future__ import annotations

import secrets
import time

from security_tests.attacks.client import Client, exchange
from security_tests.contract import Evidence


def _status_counts(statuses: list[int]) -> dict[int, int]:
    return {status: statuses.count(status) for status in sorted(set(statuses))}


def most_answers_in_one_window(brackets: list[tuple[float, float]], window: float) -> int:
    """Answers that certainly fell inside one window: from the first one's send to the last one's receipt
    is shorter than the window, so the service's own decision times were closer still."""
    best = 0
    for first, (sent, _) in enumerate(brackets):
        best = max(best, sum(1 for _, received in brackets[first:] if received - sent < window))
    return best


def boundary_burst(client: Client, payload: dict, limit: int, window: float, max_requests: int = 3000) -> Evidence:
    """One request opens a window; just before it ends, send steadily until well past the next boundary.
    A fixed window answers the rest of its budget and then a whole new one within moments."""
    brackets, statuses, refused = [], [], None
    started = time.monotonic()
    answer = client.predict(payload)
    statuses.append(answer.status)
    if answer.ok:
        brackets.append((started, time.monotonic()))
    time.sleep(max(0.0, started + 0.9 * window - time.monotonic()))
    while time.monotonic() < started + 2.1 * window and len(statuses) < max_requests:
        sent = time.monotonic()
        answer = client.predict(payload)
        statuses.append(answer.status)
        if answer.ok:
            brackets.append((sent, time.monotonic()))
        elif refused is None:
            refused = {"retry_after": answer.headers.get("Retry-After"),
                       "sample": exchange("the first refused request", payload, answer)}
        time.sleep(0.002)
    most = most_answers_in_one_window(brackets, window)
    return Evidence(
        attack_succeeded=most > limit, queries=len(statuses),
        summary=f"{most} answers inside one {window:g} s window (limit {limit}); "
                f"{len(brackets)} of {len(statuses)} requests answered across a window boundary",
        samples=[refused["sample"]] if refused else [],
        measurements={"limit": limit, "window_seconds": window, "answered": len(brackets),
                      "most_answers_in_one_window": most},
        details={"statuses": _status_counts(statuses), "first_refusal": refused})


def pause_then_burst(client: Client, payload: dict, limit: int, window: float, warm_up: int = 4) -> Evidence:
    """A few quick requests, a pause longer than one window, then as many as the service answers. A
    limiter that hands a busy client slots in advance must not let slots granted before the pause be
    spent after it, on top of a whole new window."""
    brackets, statuses = [], []

    def send() -> None:
        sent = time.monotonic()
        answer = client.predict(payload)
        statuses.append(answer.status)
        if answer.ok:
            brackets.append((sent, time.monotonic()))

    for _ in range(warm_up):
        send()
    time.sleep(window * 1.2)
    resumed = time.monotonic()
    while time.monotonic() < resumed + 0.8 * window and len(statuses) < warm_up + 4 * limit:
        send()
    most = most_answers_in_one_window(brackets, window)
    return Evidence(
        attack_succeeded=most > limit, queries=len(statuses),
        summary=f"{most} answers inside one {window:g} s window after a pause (limit {limit}); "
                f"{len(brackets)} of {len(statuses)} requests answered",
        measurements={"limit": limit, "window_seconds": window, "answered": len(brackets),
                      "most_answers_in_one_window": most},
        details={"statuses": _status_counts(statuses)})


def guess_keys(client: Client, payload: dict, allowed: int, guesses: int) -> Evidence:
    """Wrong and missing keys from one address: every answer that is not 429 is one guess the service
    checked (and one audit record); a limit before authentication stops that after ``allowed``."""
    statuses, refused = [], None
    for index in range(guesses):
        headers = {"X-API-Key": secrets.token_urlsafe(24)} if index % 4 else {}
        answer = client.predict(payload, headers=headers)
        statuses.append(answer.status)
        if answer.status == 429 and refused is None:
            refused = {"at": index + 1, "retry_after": answer.headers.get("Retry-After"),
                       "sample": exchange("the first refused guess", payload, answer, headers)}
    checked = sum(status != 429 for status in statuses)
    return Evidence(
        attack_succeeded=checked > allowed, queries=guesses,
        summary=f"{checked} of {guesses} wrong or missing keys from one address were checked (limit {allowed})",
        samples=[refused["sample"]] if refused else [],
        measurements={"guesses_checked": checked, "allowed": allowed,
                      "first_refused_at": refused["at"] if refused else None},
        details={"statuses": _status_counts(statuses), "first_refusal": refused})


def rotate_identities(clients: list[tuple[str, Client]], payload: dict, allowed: int,
                      per_identity: int) -> Evidence:
    """Spread requests over several identities (keys or addresses) that share the other half of the
    budget: answered beyond ``allowed`` means one of the two limits is missing."""
    answered, statuses = {}, []
    for name, client in clients:
        results = [client.predict(payload) for _ in range(per_identity)]
        statuses += [answer.status for answer in results]
        answered[name] = sum(answer.ok for answer in results)
    total = sum(answered.values())
    return Evidence(
        attack_succeeded=total > allowed, queries=len(statuses),
        summary=f"{total} of {len(statuses)} requests answered across {len(clients)} identities (limit {allowed})",
        measurements={"answered": total, "allowed": allowed, "identities": len(clients)},
        details={"answered_per_identity": answered, "statuses": _status_counts(statuses)})
