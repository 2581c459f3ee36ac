"""MED-5: which probing the query monitor notices, and at which query.

The monitor is observed only through the service's outputs (its alert log lines, its alert audit records):
``read_alerts`` returns the alerts the service has emitted so far. The probes walk one feature of the
profile's positive example across its typical range (a sweep, or a label-only bisection) and are disguised
the way an attacker who knows a monitor is watching would: noise on another feature, or random decoy
inputs between probes. Which feature is probed is the one the label-only boundary search finds to flip the
positive example alone; features, ranges, units and examples all come from the target profile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from security_tests.attacks.client import Answer, Client
from security_tests.attacks.evasion import boundary_search
from security_tests.attacks.score_exposure import bisect_flip
from security_tests.contract import Evidence, NotAssessed
from security_tests.targets.profile import FieldSpec, TargetProfile


def first_alerts(records: list[dict]) -> dict[str, int]:
    """Detector (and ``detector/rule``) -> the client's query number at which it first fired."""
    found: dict[str, int] = {}
    for record in records:
        if record.get("type") == "alert":
            found.setdefault(record["detector"], record["at_query"])
            if record.get("rule"):
                found.setdefault(f"{record['detector']}/{record['rule']}", record["at_query"])
    return found


class _AlertLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.alerts: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "monitor_alert"):
            self.alerts.append(record.monitor_alert)


def alert_lines(client) -> Callable[[], list[dict]]:
    """The alert lines an in-process service has logged so far: the output an operator reads."""
    lines = _AlertLines()
    client.app.logger.addHandler(lines)
    return lambda: list(lines.alerts)


def detect_attack(name: str, run_attack: Callable[[], Evidence], read_alerts: Callable[[], list[dict]],
                  expect: dict[str, int] | None = None) -> Evidence:
    """Run an attack and read the alerts it raised; the attack succeeds here when it goes unnoticed.

    ``expect`` names detectors that must each fire by a given query: one detector that stopped working
    is then not hidden by another that still fires, and a detector that fires later than it did when
    measured (a loosened threshold) counts as missing.
    """
    before = len(read_alerts())
    attack = run_attack()
    alerts = first_alerts(read_alerts()[before:])
    first = min(alerts.values()) if alerts else None
    missed = {d: by for d, by in (expect or {}).items() if alerts.get(d) is None or alerts[d] > by}
    summary = (f"{name} flagged by {sorted(d for d in alerts if '/' not in d)} at query {first} of "
               f"{attack.queries}" if alerts
               else f"{name} ({attack.queries} queries) raised no alert")
    if missed:
        summary += "; " + ", ".join(f"{d} detector did not fire by query {by}" for d, by in missed.items())
    return Evidence(attack_succeeded=not alerts or bool(missed), summary=summary, queries=attack.queries,
                    measurements={"first_flag_at_query": first,
                                  **{f"{d.replace('/', ' ')} flag at query": q for d, q in sorted(alerts.items())}},
                    details={"alerts": alerts, "expected_by_query": expect or {}, "attack_summary": attack.summary})


def flipping_feature(client: Client, profile: TargetProfile) -> FieldSpec:
    """The feature whose change alone flips the positive example (the boundary search's cheapest), which is
    where an attacker's probing concentrates."""
    change = boundary_search(client, profile)["change"]
    if not change or len(change) != 1:
        raise NotAssessed(f"not assessed: no single feature flips the positive example ({change}), so there is "
                          "no one-feature boundary to probe")
    return next(f for f in profile.fields if f.name in change)


def noise_feature(profile: TargetProfile, probed: FieldSpec) -> FieldSpec:
    """Where the disguise puts its noise: a continuous feature other than the probed one, if there is one."""
    others = [f for f in profile.fields if f.name != probed.name]
    return next((f for f in others if f.type == "float"), others[0])


class DisguisedClient:
    """Adds up to ``noise`` meaningful steps of ``noisy`` to each probe and sends ``decoys`` random inputs
    (uniform over every feature's typical range) after it."""

    def __init__(self, client: Client, profile: TargetProfile, noisy: FieldSpec, noise: float = 0.0,
                 decoys: int = 0, seed: int = 7) -> None:
        self.client, self.target, self.profile = client, client.target, profile
        self.noisy, self.noise, self.decoys = noisy, noise * noisy.meaningful_step, decoys
        self.sent = 0
        self._rng = np.random.default_rng(seed)

    def predict(self, payload=None, headers=None, **kwargs) -> Answer:
        if self.noise and isinstance(payload, dict):
            name = self.noisy.name
            payload = {**payload, name: self.noisy.clip(payload[name] + self._rng.uniform(-self.noise, self.noise))}
        answer = self.client.predict(payload, headers, **kwargs)
        self.sent += 1
        for _ in range(self.decoys):
            self.client.predict(self._decoy())
            self.sent += 1
        return answer

    def get(self, path: str, headers: dict | None = None) -> Answer:
        return self.client.get(path, headers)

    def _decoy(self) -> dict:
        values = []
        for spec in self.profile.fields:
            low, high = spec.typical_range
            values.append(self._rng.uniform(low, high) if spec.type == "float"
                          else self._rng.integers(int(low), int(high) + 1))
        return self.profile.row(values)


def meaningful_steps(probed: FieldSpec) -> list:
    """Every meaningful step of ``probed`` across its typical range, low to high: what the sweeps walk."""
    low, high = probed.typical_range
    return [probed.cast(v) for v in np.arange(low, high + probed.meaningful_step / 2, probed.meaningful_step)]


def _sweep(client, profile: TargetProfile, probed: FieldSpec) -> dict:
    """Every meaningful step of ``probed`` across its typical range, from the positive example."""
    values = meaningful_steps(probed)
    labels = [client.predict({**profile.positive_example, probed.name: value}).label for value in values]
    flips = [i for i in range(1, len(values)) if None not in labels[i - 1:i + 1] and labels[i] != labels[i - 1]]
    return {"flipped": bool(flips), "first_flipped_value": values[flips[0]] if flips else None}


def _bisection(client, profile: TargetProfile, probed: FieldSpec) -> dict:
    def ask(name, value):
        return client.predict({**profile.positive_example, name: value}).label, None

    return bisect_flip(ask, probed, profile.positive_example[probed.name], probed.typical_range[1],
                       probed.meaningful_step)


PROBES = {"sweep": _sweep, "bisection": _bisection}
DISGUISES = {
    "noisy sweep": {"probe": "sweep", "noise": 0.1},
    "decoy-interleaved sweep": {"probe": "sweep", "decoys": 1},
    "wide-noise sweep": {"probe": "sweep", "noise": 2.0},
}
"""Noise in meaningful steps of the noise feature (fraudpipe: $100 of amount, so 0.1 is +-$10)."""
# The rule of the probing detector that must catch each disguise, by the query where it was measured to
# fire (aligned 9 and 13, monotonic 10) with a little slack: each rule is tested on its own.
MUST_FIRE = {
    "noisy sweep": {"probing/aligned": 12},
    "decoy-interleaved sweep": {"probing/aligned": 16},
    "wide-noise sweep": {"probing/monotonic": 12},
}
RESIDUAL_DISGUISES = {
    "sparse sweep": {"probe": "sweep", "decoys": 3},
    "noisy label-only bisection": {"probe": "bisection", "noise": 0.1},
    "decoy-interleaved bisection": {"probe": "bisection", "decoys": 1},
}


def disguise_name(name: str, disguise: dict, profile: TargetProfile, probed: FieldSpec) -> str:
    """``noisy sweep of hour_of_day (amount +-10)``: the disguise in the profile's own features."""
    noisy = noise_feature(profile, probed)
    parts = ([f"{noisy.name} +-{disguise['noise'] * noisy.meaningful_step:g}"] if disguise.get("noise") else []) + \
            ([f"{disguise['decoys']} random decoy(s) per probe"] if disguise.get("decoys") else [])
    return f"{name} of {probed.name} ({', '.join(parts)})"


def disguised_probing(client: Client, profile: TargetProfile, probed: FieldSpec, probe: str, noise: float = 0.0,
                      decoys: int = 0) -> Evidence:
    """One disguised probe of ``probed``'s boundary; whether it found the flip and what it cost."""
    disguised = DisguisedClient(client, profile, noise_feature(profile, probed), noise=noise, decoys=decoys)
    found = PROBES[probe](disguised, profile, probed)
    return Evidence(attack_succeeded=bool(found["flipped"]), queries=disguised.sent,
                    summary=f"{disguised.sent} queries; " + (f"label flips at {probed.name} {found['first_flipped_value']}"
                                                             if found["flipped"] else "no flip found"),
                    measurements={"first_flipped_value": found["first_flipped_value"]})


class RotatingKeys:
    """Each query goes out with the next of ``clients``: several keys from one address, so no one key sees
    more than a few queries of the probe."""

    def __init__(self, clients: list[Client]) -> None:
        self.clients, self.target, self.sent = clients, clients[0].target, 0

    def predict(self, payload=None, headers=None, **kwargs) -> Answer:
        client = self.clients[self.sent % len(self.clients)]
        self.sent += 1
        return client.predict(payload, headers, **kwargs)

    def get(self, path: str, headers: dict | None = None) -> Answer:
        return self.clients[0].get(path, headers)


def rotated_probing(clients: list[Client], profile: TargetProfile, probed: FieldSpec) -> Evidence:
    """A sweep of ``probed`` whose queries rotate over ``clients`` (keys from one address): a monitor that
    watches keys only sees each key send a query or two and never a run."""
    rotating = RotatingKeys(clients)
    found = _sweep(rotating, profile, probed)
    return Evidence(attack_succeeded=bool(found["flipped"]), queries=rotating.sent,
                    summary=f"{rotating.sent} queries over {len(clients)} keys from one address; "
                            + (f"label flips at {probed.name} {found['first_flipped_value']}" if found["flipped"]
                               else "no flip found"),
                    measurements={"first_flipped_value": found["first_flipped_value"], "keys": len(clients)})


def spread_sweep(new_client: Callable[[], Client], profile: TargetProfile, probed: FieldSpec, rounds: int,
                 flagged_by: int, spread: str = "each on a new connection") -> Evidence:
    """One key sweeping ``probed`` across its typical range ``rounds`` times, each query sent by the client
    ``new_client`` gives next (a new connection, or the next worker's: as a load balancer spreads them over
    workers and hosts). ``flagged_by`` is the query whose refusal the monitor gives one worker seeing every
    query (measured in-process); the attack succeeds when the spread sweep is refused later than one query
    after that, or is answered again after its first refusal."""
    steps = meaningful_steps(probed)
    statuses = [new_client().predict({**profile.positive_example, probed.name: value}).status
                for _ in range(rounds) for value in steps]
    first = statuses.index(403) + 1 if 403 in statuses else None
    after = statuses[first:].count(200) if first else 0
    late = first is None or first > flagged_by + 1
    summary = (f"a sweep of {probed.name} ({len(statuses)} queries, {spread}) was first refused "
               f"at query {first} (one worker seeing every query: {flagged_by}); {after} answered after that"
               if first else f"a sweep of {probed.name} ({len(statuses)} queries, {spread}) was "
               f"never refused (one worker seeing every query refuses query {flagged_by})")
    return Evidence(attack_succeeded=late or after > 0, summary=summary, queries=len(statuses),
                    measurements={"first_refused_at_query": first, "refused_in_process_at_query": flagged_by,
                                  "answered_after_first_refusal": after},
                    details={"statuses": {s: statuses.count(s) for s in sorted(set(statuses))}})


def burst_at_the_flag(clients: list[Client], profile: TargetProfile, probed: FieldSpec, flagged_by: int,
                      callers: list[tuple[str, str]], burst: int = 12) -> Evidence:
    """A sweep of ``probed`` by one caller (an API key and the address its proxy names), its first
    ``flagged_by - 3`` queries sent one at a time, the next ``burst`` all at once over ``clients`` (one
    kept-alive connection per worker, a few queries each): the queries arriving together race the one
    that completes the probing run, while its worker raises the alert. Repeated for each of ``callers``
    (fresh histories). One worker seeing every query answers ``flagged_by - 1`` of them; the attack
    succeeds when any caller is answered more often than that."""
    from concurrent.futures import ThreadPoolExecutor

    steps = meaningful_steps(probed)
    lead = max(1, flagged_by - 3)
    answered, refusals = [], {}
    with ThreadPoolExecutor(len(clients)) as pool:
        for key, address in callers:
            headers = {**profile.auth_headers(key), "X-Forwarded-For": address}
            ask = lambda client, values: [client.predict({**profile.positive_example, probed.name: value},  # noqa: E731
                                                         headers=headers).status for value in values]
            statuses = [ask(clients[i % len(clients)], [value])[0] for i, value in enumerate(steps[:lead])]
            shares = [steps[lead + i:lead + burst:len(clients)] for i in range(len(clients))]
            statuses += [status for part in pool.map(ask, clients, shares) for status in part]
            answered.append(statuses.count(200))
            for status in statuses:
                refusals[status] = refusals.get(status, 0) + 1
    most = max(answered)
    return Evidence(attack_succeeded=most > flagged_by - 1,
                    summary=f"{len(callers)} sweeps of {probed.name}, {lead} queries one at a time then {burst} at once "
                            f"over {len(clients)} workers: answered {', '.join(map(str, answered))} times (one worker "
                            f"seeing every query answers {flagged_by - 1})",
                    queries=len(callers) * (lead + burst),
                    measurements={"most_answered": most, "answered_by_one_worker": flagged_by - 1,
                                  "sweeps_answered_more": sum(count > flagged_by - 1 for count in answered)},
                    details={"answered_per_sweep": answered, "statuses": dict(sorted(refusals.items()))})


def flag_after_restart(new_client: Callable[[], Client], profile: TargetProfile, probed: FieldSpec,
                       restart: Callable[[], Callable[[], Client]], asks: int = 6) -> Evidence:
    """A sweep of ``probed`` until the service refuses it, then ``restart`` (the operator restarts the
    service, and whatever else the deployment loses with it), then ``asks`` more queries by the same key
    from the same address: the attack succeeds when any of them is answered."""
    steps = meaningful_steps(probed)
    ask = lambda client, value: client.predict({**profile.positive_example, probed.name: value}).status  # noqa: E731
    before = []
    for value in steps:
        before.append(ask(new_client(), value))
        if before[-1] == 403:
            break
    again = restart()
    after = [ask(again(), steps[i % len(steps)]) for i in range(asks)]
    refused_at = len(before) if before[-1] == 403 else None
    return Evidence(attack_succeeded=refused_at is not None and 200 in after,
                    summary=f"a sweep of {probed.name} first refused at query {refused_at}; after the restart "
                            f"{after.count(200)} of {asks} queries by the same key and address answered",
                    queries=len(before) + asks,
                    measurements={"first_refused_at_query": refused_at, "answered_after_restart": after.count(200)},
                    details={"statuses_after_restart": after})
