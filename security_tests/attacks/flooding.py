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


class _TimedSends:
    """Requests sent one at a time, each answered one bracketed by its send and receipt times: a count
    that fits between the first send and the last receipt is certainly inside one window."""

    def __init__(self, client: Client, payload: dict) -> None:
        self.client, self.payload = client, payload
        self.brackets: list[tuple[float, float]] = []
        self.statuses: list[int] = []

    def send(self):
        sent = time.monotonic()
        answer = self.client.predict(self.payload)
        self.statuses.append(answer.status)
        if answer.ok:
            self.brackets.append((sent, time.monotonic()))
        return answer

    def evidence(self, limit: int, window: float, after: str, **extra) -> Evidence:
        most = most_answers_in_one_window(self.brackets, window)
        return Evidence(
            attack_succeeded=most > limit, queries=len(self.statuses),
            summary=f"{most} answers inside one {window:g} s window (limit {limit}); "
                    f"{len(self.brackets)} of {len(self.statuses)} requests answered {after}",
            measurements={"limit": limit, "window_seconds": window, "answered": len(self.brackets),
                          "most_answers_in_one_window": most},
            details={"statuses": _status_counts(self.statuses)}, **extra)


def boundary_burst(client: Client, payload: dict, limit: int, window: float, max_requests: int = 3000) -> Evidence:
    """One request opens a window; just before it ends, send steadily until well past the next boundary.
    A fixed window answers the rest of its budget and then a whole new one within moments."""
    sends, refused = _TimedSends(client, payload), None
    started = time.monotonic()
    sends.send()
    time.sleep(max(0.0, started + 0.9 * window - time.monotonic()))
    while time.monotonic() < started + 2.1 * window and len(sends.statuses) < max_requests:
        answer = sends.send()
        if not answer.ok and refused is None:
            refused = {"retry_after": answer.headers.get("Retry-After"),
                       "sample": exchange("the first refused request", payload, answer)}
        time.sleep(0.002)
    found = sends.evidence(limit, window, "across a window boundary",
                           samples=[refused["sample"]] if refused else [])
    found.details["first_refusal"] = refused
    return found


def pause_then_burst(client: Client, payload: dict, limit: int, window: float, warm_up: int = 4) -> Evidence:
    """A few quick requests, a pause longer than one window, then as many as the service answers. A
    limiter that hands a busy client slots in advance must not let slots granted before the pause be
    spent after it, on top of a whole new window."""
    sends = _TimedSends(client, payload)
    for _ in range(warm_up):
        sends.send()
    time.sleep(window * 1.2)
    resumed = time.monotonic()
    while time.monotonic() < resumed + 0.8 * window and len(sends.statuses) < warm_up + 4 * limit:
        sends.send()
    return sends.evidence(limit, window, "after a pause")


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
