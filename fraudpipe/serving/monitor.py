"""Query-pattern monitor: flags probing and extraction from the stream of answered queries.

Two detectors per client (the key id, or the address without auth):
- single-feature probing, watched per API key AND per client address (rotating keys from one address,
  or one key from many addresses, does not reset it), three ways: a run of consecutive queries that each change exactly one
  feature of the previous one; within the client's last ``WINDOW`` queries, ``ALIGNED_RUN`` earlier
  queries that differ from the new one in one feature only, the others equal up to ``NOISE`` (a sweep
  or bisection with small noise on another feature, or with benign decoys between the probes); one
  feature strictly monotonic over ``MONOTONIC_RUN`` consecutive queries (a sweep under any noise);
- PRADA-style distribution anomaly (Juuti et al., 2019): the minimum distance from each new query to
  the client's earlier ones should look roughly normal for organic traffic; a Shapiro-Wilk W below a
  threshold calibrated on benign clients flags synthetic query sets.

It reads audit records, so it can run inside each worker or tail the shared audit log. It raises
alert records and can optionally block a flagged client; what it misses is measured and reported.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Sequence

import numpy as np
from flask import Flask

from fraudpipe.data import FEATURE_NAMES, UNITS
from fraudpipe.serving.errors import ApiError
from fraudpipe.serving.limits import budget_address

log = logging.getLogger("fraudpipe")
PROBE_RUN = 6
WINDOW = 20
ALIGNED_RUN = 6  # 5 distinct earlier values flagged 1 of 200 benign clients; 6 flagged none (two seeds)
MONOTONIC_RUN = 10
NOISE = np.array([10.0, 0.0, 0.0, 0.0])  # what "the other features did not move" allows: $10 of amount
PRADA_MIN = 20
PRADA_W = 0.40  # 1st percentile of W over benign clients (monitor_calibration.py recalibrates)
PRADA_WINDOW = 200
PRADA_EVERY = 4  # the W test every 4th query once PRADA_MIN distances are in
_ONES = np.ones(len(FEATURE_NAMES))  # the units of queries already scaled
kernels = None  # ``monitor_kernels``, imported with the first monitor: importing numba takes a third of a second


def compiled(shared: bool = False):
    """The compiled kernels, imported and warmed where a monitor is made (``monitor_kernels.warm``), so that
    no answer waits on them and a process that makes no monitor never imports numba."""
    global kernels
    if kernels is None:
        from fraudpipe.serving import monitor_kernels

        monitor_kernels.warm(shared=False)
        kernels = monitor_kernels
    if shared:
        kernels.warm(shared=True)
    return kernels


class _ClientState:
    """One identity's recent history, kept in fixed arrays so a query costs a few array operations and
    no list-to-array conversion (the monitor runs on every answered request)."""

    __slots__ = ("count", "flagged", "recent", "recent_n", "queries", "queries_n", "distances", "distances_n")

    def __init__(self) -> None:
        self.count = 0
        self.flagged: set[str] = set()
        self.recent = np.empty((WINDOW, len(FEATURE_NAMES)))
        self.recent_n = 0
        self.queries = np.empty((PRADA_WINDOW, len(FEATURE_NAMES)))
        self.queries_n = 0
        self.distances: deque[float] = deque(maxlen=PRADA_WINDOW)
        self.distances_n = 0

    def remember(self, raw: np.ndarray) -> None:
        self.recent[self.recent_n % WINDOW] = raw
        self.recent_n += 1


class QueryMonitor:
    def __init__(self, probe_run: int = PROBE_RUN, prada_min: int = PRADA_MIN, prada_w: float = PRADA_W,
                 block: bool = False) -> None:
        self.probe_run, self.prada_min, self.prada_w, self.block = probe_run, prada_min, prada_w, block
        self._clients: dict[str, _ClientState] = {}
        self._lock = threading.Lock()
        compiled()

    @property
    def rules(self) -> tuple[int, np.ndarray, int, int, float]:
        """The probing rules' settings, for a store that evaluates them as it orders a query."""
        return self.probe_run, NOISE, ALIGNED_RUN, MONOTONIC_RUN, self.prada_w

    @staticmethod
    def identity(record: dict) -> str:
        return record.get("key_id") or f"addr:{budget_address(str(record.get('client')))}"

    @staticmethod
    def identities(record: dict) -> list[str]:
        """The key and the address (an IPv6 /64, as the limiter counts it), each watched on its own; an
        unknown address is not one identity."""
        found = [QueryMonitor.identity(record)]
        if record.get("key_id") and record.get("client"):
            found.append(f"addr:{budget_address(record['client'])}")
        return found

    def is_blocked(self, *identities: str) -> bool:
        states = [self._clients.get(identity) for identity in identities]
        return bool(self.block and any(state and state.flagged for state in states))

    def observe(self, record: dict) -> list[dict]:
        """Feed one audit record; returns the alerts it raised (each detector alerts once per identity,
        and stops working for an identity once it has alerted). The probing detector watches the key and
        the address; the distribution detector the primary identity only (the key, or the address)."""
        features = record.get("features")
        if not features or record.get("status") != 200:
            return []
        raw = np.array([float(v) for v in features])
        with self._lock:
            return [alert for index, identity in enumerate(self.identities(record))
                    for alert in self._observe(identity, raw, distribution=index == 0)]

    def _observe(self, identity: str, raw: np.ndarray, distribution: bool) -> list[dict]:
        state = self._clients.get(identity)
        if state is None:
            state = self._clients[identity] = _ClientState()
        state.count += 1
        alerts = []
        if "probing" not in state.flagged:
            probing = probing_verdict(kernels.last_rows(state.recent, state.recent_n, WINDOW), raw, self.probe_run)
            state.remember(raw)
            if probing:
                state.flagged.add("probing")
                alerts.append(self._alert(identity, "probing", state.count, probing[1], rule=probing[0]))
        if distribution and "distribution" not in state.flagged:
            alerts += self._distribution(identity, state, raw / UNITS)
        return alerts

    def _distribution(self, identity: str, state: _ClientState, x: np.ndarray) -> list[dict]:
        if state.queries_n:
            state.distances.append(min_distance(state.queries[:min(state.queries_n, PRADA_WINDOW)], x))
            state.distances_n += 1
        state.queries[state.queries_n % PRADA_WINDOW] = x
        state.queries_n += 1
        if state.distances_n < self.prada_min or (state.distances_n - self.prada_min) % PRADA_EVERY:
            return []
        w = prada_statistic(state.distances)
        if w >= self.prada_w:
            return []
        state.flagged.add("distribution")
        return [self._alert(identity, "distribution", state.count,
                            f"Shapiro-Wilk W {w:.3f} < {self.prada_w} over {state.distances_n} distances",
                            rule="prada")]

    def shared_alerts(self, identity: str, view, raw: np.ndarray, store, distribution: bool,
                      evidence: dict | None = None) -> list[dict]:
        """The same rules over the shared history ``view`` (``monitor_store.Observed``) instead of this
        process's state; the query's PRADA distance, unless the store computed and kept it already
        (``view.distance``), is computed here and pushed to the store for whoever answers next.
        ``evidence`` carries the probing rules' verdict between the identities of one query: a client's key
        and address usually hold the same recent queries, and the rules read nothing else."""
        alerts = []
        if "probing" not in view.flags and not view.repeat:
            recent = view.history[-WINDOW:]
            if view.verdict is not None:  # the host's table evaluated the rules as it ordered the query
                probing = described(*view.verdict, len(recent))
            elif evidence is not None and (seen := recent.tobytes()) in evidence:
                probing = evidence[seen]
            else:
                probing = probing_verdict(recent, raw, self.probe_run)
                if evidence is not None:
                    evidence[seen] = probing
            if probing:
                alerts.append(self._alert(identity, "probing", view.count, probing[1], rule=probing[0]))
        if distribution and "distribution" not in view.flags:
            distance = view.distance  # the host's table keeps it with the query, under its lock
            if distance is None and len(view.history):
                distance = min_distance(view.history[-PRADA_WINDOW:] / UNITS, raw / UNITS)
                store.push_distance(identity, distance)
            if distance is not None and view.distances is not None:
                distances = np.append(view.distances, distance)[-PRADA_WINDOW:]
                w = prada_statistic(distances)
                if w < self.prada_w:
                    alerts.append(self._alert(identity, "distribution", view.count,
                                              f"Shapiro-Wilk W {w:.3f} < {self.prada_w} over {view.count - 1} "
                                              "distances", rule="prada"))
        return alerts

    @staticmethod
    def _alert(identity: str, detector: str, query: int, detail: str, rule: str) -> dict:
        return {"type": "alert", "detector": detector, "rule": rule, "client_identity": identity,
                "at_query": query, "detail": detail}


def install(app: Flask, service) -> None:
    """Observes every answered record; with ``FRAUDPIPE_MONITOR_BLOCK`` a flagged client gets 403.
    Alerts leave the service as audit records and log lines, the outputs an operator already reads.
    Where the rate limit is shared (Redis) the monitor's state is too (``monitor_store``); with
    ``memory://`` (one worker) it lives in the process."""
    if shared_with_the_limiter(service):
        return _install_shared(app, service)
    monitor = QueryMonitor(block=service.settings.monitor_block)

    def refuse_flagged(asked, context) -> None:
        if asked.endpoint == "predict" and monitor.is_blocked(*_asking(asked, context)):
            raise _blocked()

    if monitor.block:
        service.checks.append(refuse_flagged)

    def observe(records: list[dict], context) -> list[dict]:
        return _alert_records(records, monitor.observe(records[0]))

    service.sinks.append(observe)


def shared_with_the_limiter(service) -> bool:
    """The monitor shares the Redis the limiter talks to: with the limiter off (an assessment variant) or
    on ``memory://`` (one worker) there is none, and the state stays in the process."""
    return (service.shared_monitor and "rate_limit" in service.controls
            and not service.settings.rate_limit_storage.startswith("memory://"))


def _asking(asked, context) -> tuple[str, ...]:
    return _identities_of(context.key_id, asked.remote_addr)


@functools.lru_cache(maxsize=4096)
def _identities_of(key_id: str | None, client: str | None) -> tuple[str, ...]:
    """The request's identities, made once per key and address (every answer asks)."""
    return tuple(QueryMonitor.identities({"key_id": key_id, "client": client}))


def _blocked() -> ApiError:
    return ApiError(403, "blocked", "this client was flagged for probing; contact the service owner")


def _alert_records(records: list[dict], alerts: list[dict]) -> list[dict]:
    for alert in alerts:
        log.warning("monitor alert: %s", alert, extra={"monitor_alert": alert})
    return [{"ts": records[0]["ts"], "request_id": records[0]["request_id"], **alert} for alert in alerts]


def _install_shared(app: Flask, service) -> None:
    """Every answered /predict is observed in the shared state before it leaves (``answer_gates``): the
    host's table while the limiter's calls show one host serving (``monitor_host``), Redis from the first
    call that shows two (for as long as the host runs: the hosts' histories meet only there). A client
    flagged by any worker is refused there (403 with blocking on), a state that cannot be read turns the
    answer into 503. Flags this process has seen also refuse the client before the model runs."""
    from fraudpipe.serving.monitor_store import SharedMonitorStore
    from fraudpipe.serving.ratelimit_store import StoreUnavailable

    block = service.settings.monitor_block
    host, limiter = service.host_monitor, service.rate_store
    deployment = host.alerts if host is not None else SharedMonitorStore(service.settings.rate_limit_storage)
    service.readiness_checks.append(deployment.ready)
    detectors = QueryMonitor(block=block)
    compiled(shared=True)  # Redis's histories and the host table's call
    at_host = (host.observer(block, WINDOW, PRADA_WINDOW, detectors.prada_min, PRADA_EVERY, detectors.rules)
               if host is not None else None)
    flagged_here: set[str] = set()  # only ever adds refusals

    def refuse_known(asked, context) -> None:
        if asked.endpoint == "predict" and flagged_here.intersection(_asking(asked, context)):
            raise _blocked()

    if block:
        service.checks.append(refuse_known)

    def gate(status: int, asked, context) -> None:
        if asked.endpoint != "predict" or status != 200 or getattr(context, "features", None) is None:
            return
        names, raw = _asking(asked, context), context.row  # the parsed row, float64 in schema order
        try:
            if at_host is not None and host.alone(limiter.hosts):
                seen = at_host(names, raw)
                alerts = seen and raised(host, detectors, names, raw, seen)  # [] (the usual answer): nothing to raise
            else:
                alerts = observe_shared(deployment, detectors, names, raw)
            if block and alerts:
                flagged_here.update(alert["client_identity"] for alert in alerts)
            if alerts is None or isinstance(alerts, Lost):
                context.features = context.prediction = context.probability = None
                context.monitor_alerts = alerts  # what it raised is recorded with its refusal
                raise _blocked()
        except StoreUnavailable as exc:
            context.features = context.prediction = context.probability = None
            raise ApiError(503, "monitor_unavailable", f"{exc}; try again shortly",
                           headers={"Retry-After": "1"}) from None
        context.monitor_alerts = alerts

    def record_alerts(records: list[dict], context) -> list[dict]:
        alerts = getattr(context, "monitor_alerts", None)
        return _alert_records(records, alerts) if alerts else []

    service.answer_gates.append(gate)
    service.sinks.append(record_alerts)


def observe_shared(store, detectors: QueryMonitor, identities: list[str], raw: np.ndarray) -> list[dict] | None:
    """One answered query through the shared state: the alerts it raised first anywhere (each alert once
    across workers), or None when ``detectors.block`` is on and the client is already flagged."""
    return raised(store, detectors, identities, raw,
                  store.observe(identities, raw, detectors.block, WINDOW, PRADA_WINDOW, detectors.prada_min,
                                PRADA_EVERY, detectors.rules))


class Lost(list):
    """The alerts a query raised when another query raised one of its alerts first: refused with blocking on."""


def raised(store, detectors: QueryMonitor, identities: Sequence[str], raw: np.ndarray,
           seen: list | set[str]) -> list[dict] | None:
    """The alerts the rules raise over the store's views of one query (each once across workers); None for
    a flagged client while blocking is on (``seen`` a set); ``Lost`` for a query one of whose alerts another
    query raised first: across hosts a query is ordered in one round trip and its alert raised in the next,
    so another host's query ordered between the two finds no flag yet, and only losing an alert to it says
    the client is flagged (the host table claims the flag as it orders the query: no such window there)."""
    if isinstance(seen, set):
        return None
    evidence: dict = {}
    found = [(name, alert) for index, (name, view) in enumerate(zip(identities, seen))
             for alert in detectors.shared_alerts(name, view, raw, store, distribution=index == 0, evidence=evidence)]
    alerts = [alert for name, alert in found if store.raise_alert(name, alert)]
    return Lost(alerts) if detectors.block and len(alerts) < len(found) else alerts


def probing_verdict(recent: np.ndarray, raw: np.ndarray, probe_run: int = PROBE_RUN) -> tuple[str, str] | None:
    """Which rule says ``raw`` completes a probing run over the client's ``recent`` queries (oldest first,
    raw units), and why; or None."""
    return described(*(kernels or compiled()).probing_rule(recent, raw, probe_run, NOISE, ALIGNED_RUN, MONOTONIC_RUN),
                     len(recent))


def described(rule: int, a: int, b: int, recent: int) -> tuple[str, str] | None:
    """A compiled verdict (``monitor_kernels.probing_rule``) over ``recent`` earlier queries, as the alert says it."""
    if rule == kernels.CONSECUTIVE:
        return "consecutive-run", f"{a} consecutive single-feature changes"
    if rule == kernels.ALIGNED:
        return "aligned", (f"{b} of the last {recent} queries differ from this one only in "
                           f"{FEATURE_NAMES[a]} (others within noise)")
    if rule == kernels.MONOTONIC:
        return "monotonic", f"{FEATURE_NAMES[a]} strictly monotonic over {MONOTONIC_RUN} queries"
    return None


def min_distance(previous, x: np.ndarray) -> float:
    """Distance (in feature units) from a query to the nearest of the client's earlier queries (both
    already over ``UNITS``)."""
    previous = np.asarray(previous, dtype=np.float64)
    return (kernels or compiled()).nearest(previous, 0, len(previous), _ONES, np.asarray(x, dtype=np.float64))


def session_statistic(rows) -> float:
    """PRADA's W for one whole client session, as the monitor would compute it at the session's end."""
    xs = np.asarray(rows, dtype=float) / UNITS
    return prada_statistic([min_distance(xs[:i], xs[i]) for i in range(1, len(xs))])


def prada_statistic(distances) -> float:
    """Shapiro-Wilk W, bit for bit as ``scipy.stats.shapiro`` computes it, compiled (``monitor_kernels``): the
    wrapper's argument handling costs ~130 µs a call, the test itself a few (tests/test_monitor.py checks they
    agree)."""
    sample = np.asarray(distances, dtype=np.float64)
    return float((kernels or compiled()).shapiro_w(sample, kernels.coefficients(len(sample))))
