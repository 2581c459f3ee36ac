"""HIGH-1, the whole family: is the promised limit held, per key and per address, however it is approached?

A plain flood on an untouched window is the first check; then the ways around a limit that a flood does
not try: the same key from another address and another key from the same address (a limit kept on one
identity only), wrong and missing keys from one address (a limit that counts only after authentication
lets an attacker guess keys at full speed), a burst across a window boundary (a fixed window answers
twice its limit within moments), slots a busy client was granted before a pause spent after it, and
rotation over keys or over spellings of one address. The flood and the key guessing read only the
profile and run against a live target; the timed and rotation attacks need a short window or several
identities set up in-process.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable

from security_tests.attacks.client import Client, exchange, require_answer
from security_tests.budget import Need, spends
from security_tests.contract import Evidence, NotAssessed
from security_tests.load import run_load
from security_tests.targets.profile import TargetProfile

BYPASS_PROBES = 3


PROMISED_BY = {"same key, another address": "key", "another key, the same address": "address"}
"""Which ``rate_limit.scope`` promises that a bypass is refused (``both`` promises each)."""


def flood_extra(limit: int) -> int:
    """How far past the limit a flood goes: enough refusals to see the limit hold, not a second window."""
    return max(5, limit // 5)


def _status_counts(statuses: list[int]) -> dict[int, int]:
    return {status: statuses.count(status) for status in sorted(set(statuses))}


def _promised(profile: TargetProfile) -> int:
    if profile.rate_limit is None:
        raise NotAssessed("not assessed: the profile promises no limit (set rate_limit.requests)")
    return profile.rate_limit


def _flood_need(profile: TargetProfile) -> Need:
    limit = profile.rate_limit
    if limit is None:
        return Need()
    return Need("", 0, BYPASS_PROBES, fresh=1, fresh_queries=limit + flood_extra(limit) + BYPASS_PROBES,
                keyless=BYPASS_PROBES, why=f"{limit + flood_extra(limit)} requests on an untouched window")


@spends(_flood_need)
def flood(fresh: Client, same_key_elsewhere: Client | None, other_key_same_address: Client | None,
          profile: TargetProfile) -> Evidence:
    """The promised limit and a fifth more of random in-range requests on an untouched key and address; then
    the same key from another address and another key from the same address, which a limit per key and
    per address must both refuse."""
    limit = _promised(profile)
    payloads = profile.random_rows(limit + flood_extra(limit), seed=7)
    first = fresh.predict(payloads[0])
    if first.status == 429:
        raise NotAssessed("not assessed (budget): the first request of the planned fresh window was refused "
                          "with 429, so the window had been spent before this test")
    require_answer(first, "the first request of the window")
    statuses, first_refused, retry_after, sample = [first.status], None, None, None
    for index, payload in enumerate(payloads[1:], start=2):
        answer = fresh.predict(payload)
        statuses.append(answer.status)
        if not answer.ok and first_refused is None:
            first_refused, retry_after = index, answer.headers.get("Retry-After")
            sample = exchange("The first refused request and its response", payload, answer)
    answered = statuses.count(200)
    refusals = {s: n for s, n in _status_counts(statuses).items() if s != 200}
    if answered <= limit and set(refusals) - {429}:
        raise NotAssessed(f"not assessed: after {answered} answers the target refused with {refusals}, not 429")
    bypass, unpromised = {}, []
    for name, client in (("same key, another address", same_key_elsewhere),
                         ("another key, the same address", other_key_same_address)):
        if profile.rate_scope not in (PROMISED_BY[name], "both"):
            unpromised.append(name)
        elif client is not None:
            bypass[name] = sum(client.predict(payloads[0]).ok for _ in range(BYPASS_PROBES))
    escaped = {name: n for name, n in bypass.items() if n}
    return Evidence(
        attack_succeeded=answered > limit or bool(escaped), queries=len(statuses) + BYPASS_PROBES * len(bypass),
        summary=(f"{answered} of {len(statuses)} automated queries answered on one key and address "
                 f"(promised {limit} per {profile.rate_window})"
                 + (f", first refusal at query {first_refused} (Retry-After {retry_after})" if first_refused
                    else ", none refused")
                 + "; after the window was spent: " + (", ".join(f"{k} {v} of {BYPASS_PROBES} answered"
                                                               for k, v in bypass.items()) or "no bypass tried")
                 + (f" (not promised, rate_limit.scope = {profile.rate_scope!r}: {', '.join(unpromised)})"
                    if unpromised else "")),
        samples=[sample] if sample else [],
        measurements={"answered": answered, "limit": limit, "first_refused_at": first_refused,
                      **{f"bypass.{k}": v for k, v in bypass.items()}},
        details={"statuses": _status_counts(statuses), "retry_after": retry_after, "bypass_answered": bypass,
                 "not_promised": unpromised,
                 "not_tried": [name for name, client in (("the same key from another address", same_key_elsewhere),
                                                         ("another key from the same address", other_key_same_address))
                               if client is None]})


def _guess_need(profile: TargetProfile) -> Need:
    limit = profile.rate_limit
    return Need() if limit is None else Need("", keyless=limit, why=(
        f"one address's whole window of wrong and missing keys ({limit}), then {flood_extra(limit)} more it "
        "must refuse"))


@spends(_guess_need)
def guess_keys(keyless: Client, profile: TargetProfile, allowed: int | None = None,
               guesses: int | None = None) -> Evidence:
    """Wrong and missing keys from one address: every answer that is not 429 is one guess the service
    checked (and one audit record); a limit before authentication stops that after ``allowed``."""
    if profile.rate_scope == "key":
        raise NotAssessed("not assessed: the profile promises a limit per key only (rate_limit.scope = 'key'), "
                          "so wrong and missing keys from one address are not held to one")
    allowed = _promised(profile) if allowed is None else allowed
    guesses = allowed + flood_extra(allowed) if guesses is None else guesses
    payload, statuses, refused = profile.negative_example, [], None
    for index in range(guesses):
        headers = profile.auth_headers(secrets.token_urlsafe(24)) if index % 4 else {}
        answer = keyless.predict(payload, headers=headers)
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


def default_limit(client: Client, profile: TargetProfile, documented: int, extra: int = 10,
                  setting: str = "rate limit left unset") -> Evidence:
    """The intended limit in force: ``documented`` answers, then refusals. By default the documented default
    when nothing sets the limit; ``setting`` names another way the limit was configured (a rule list)."""
    statuses = [client.predict(row).status for row in profile.random_rows(documented + extra, seed=3)]
    answered = statuses.count(200)
    return Evidence(
        attack_succeeded=answered > documented, queries=len(statuses),
        summary=f"{setting}: {answered} of {len(statuses)} answered; the intended limit is {documented} per window",
        measurements={"documented_limit": documented, "answered": answered},
        details={"statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))}, "in_order": statuses,
                 "setting": setting})


RULE_LISTS = ("1000/minute;5/minute", "1000/minute, 5/minute", "1000/minute|5/minute",
              "1000 per minute; 5 per minute", "5/minute;1000/minute")
"""Rate strings with two rules, the tight one last (a limiter that keeps the first keeps the loose one) and
first: the operator meant both, so at most the tightest may be answered."""


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


def workers_counting_alone(url: str, payload: dict, key: str, limit: int, requests: int) -> Evidence:
    """Eight concurrent connections, so the server spreads them over its workers: a limit counted in each
    worker's memory is multiplied by the number of workers."""
    result = run_load(url, payload, key, clients=8, seconds=30, max_requests=requests)
    answered = result.statuses.get(200, 0)
    return Evidence(
        attack_succeeded=answered > limit, queries=result.responses,
        summary=f"{answered} of {result.responses} requests over 8 connections answered (limit {limit})",
        measurements={"answered": answered, "limit": limit, "requests": result.responses},
        details={"statuses": dict(sorted(result.statuses.items())), "connection_errors": result.errors})


def storage_outage(client: Client, profile: TargetProfile, limit: int, stop_storage: Callable[[], None],
                   before: int, after: int) -> Evidence:
    """The shared counts go away mid-flood: ``before`` requests, the storage stopped, ``after`` more. A
    limiter that fails open answers them all; a closed one answers at most what it had leased (already
    counted), then 503 with Retry-After."""
    payloads = profile.random_rows(before + after, seed=5)
    first = [client.predict(payload) for payload in payloads[:before]]
    stop_storage()
    stopped = time.monotonic()
    rest = [(time.monotonic() - stopped, client.predict(payload)) for payload in payloads[before:]]
    answered_before = sum(answer.ok for answer in first)
    answered_after = [round(at, 4) for at, answer in rest if answer.ok]
    refusals = [answer for _, answer in rest if not answer.ok]
    refused_open = [answer.status for answer in refusals
                    if answer.status != 503 or not answer.headers.get("Retry-After")]
    answered = answered_before + len(answered_after)
    sample = next((exchange("a request while the rate-limit storage is down", payloads[-1], answer)
                   for _, answer in reversed(rest) if not answer.ok), None)
    return Evidence(
        attack_succeeded=answered > limit, queries=before + after,
        summary=(f"{answered_before} of {before} answered, then the rate-limit storage stopped: {len(answered_after)} "
                 f"of {after} more answered ({answered} in all, limit {limit})"
                 + (f", the last {answered_after[-1] * 1000:.0f} ms after the outage" if answered_after else "")
                 + f"; refusals {_status_counts([answer.status for answer in refusals])}"),
        samples=[sample] if sample else [],
        measurements={"answered": answered, "limit": limit, "answered_after_outage": len(answered_after),
                      "last_answer_after_outage_s": answered_after[-1] if answered_after else None},
        details={"refused_without_503_and_retry_after": refused_open,
                 "retry_after": sorted({answer.headers.get("Retry-After") for answer in refusals} - {None})})


def lapsing_leases(client: Client, payload: dict, limit: int, window: float, bursts: tuple[int, ...] = (8, 2),
                   pause: float = 0.012, windows: float = 2.5) -> Evidence:
    """Bursts of alternating size with pauses longer than a lease period, over several windows: a worker
    leases a busy client slots sized by its last burst, so every other lease lapses half used and its
    unused slots go back. Returning more than was unused leaves the client never fully counted (above the
    limit); holding slots back starves it (below the limit by more than one lease, at most one burst)."""
    sends, started, index = _TimedSends(client, payload), time.monotonic(), 0
    while time.monotonic() < started + windows * window and len(sends.brackets) <= math.ceil(windows + 1) * limit:
        for _ in range(bursts[index % len(bursts)]):
            sends.send()
        index += 1
        time.sleep(pause)
    per_window = [sum(1 for sent, received in sends.brackets
                      if started + k * window <= sent and received < started + (k + 1) * window)
                  for k in range(int(windows))]
    found = sends.evidence(limit, window, f"in bursts of {'/'.join(map(str, bursts))} with {pause * 1000:g} ms pauses")
    found.summary += f"; answers per whole window {per_window}"
    found.measurements["fewest_answers_in_a_whole_window"] = min(per_window, default=None)
    found.details.update(answers_per_whole_window=per_window, largest_burst=max(bursts))
    return found
