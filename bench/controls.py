"""What each control costs per request, measured inside the request: hardened ``/predict`` (every control,
limits in Redis, the monitor's state in the host table, as ``serve`` deploys it) and inherited, each
called through ``serve``'s front in this process (no socket, no server), with every control's hook (the
checks before the view, the answer gates, the sinks), the parser and the model call timed on its own.
Interleaved rounds of 200 requests; per hook, the lowest round's mean (the least disturbed by the rest of a
shared machine) and the median round's. Under load each of these microseconds costs the machine two or
more (``bench.serve``, ``bench.ab``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections import defaultdict

from bench.common import TRANSACTION, trained_settings
from bench.serve import forget_deployment
from fraudpipe.serving.app import create_app
from fraudpipe.serving.front import front_for
from fraudpipe.serving.server import host_monitor_for
from security_tests.servers import redis_server


class _Scope:
    """What granian hands the front for one ``POST /predict``."""

    proto, method, path, query_string, scheme, http_version = "http", "POST", "/predict", "", "http", "1.1"
    client, server = "127.0.0.1:50000", "127.0.0.1:8000"

    def __init__(self, key: str, length: int) -> None:
        self.headers = {"host": self.server, "content-type": "application/json", "content-length": str(length),
                        "x-api-key": key}


class _Protocol:
    def __init__(self, body: bytes) -> None:
        self.body, self.status = body, None

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers, content: bytes) -> None:
        self.status = status


def bodies(count: int, varied: bool) -> list[bytes]:
    """One transaction repeated, or every one different within the features' typical ranges."""
    if not varied:
        return [json.dumps(TRANSACTION).encode()] * count
    rng = random.Random(7)
    return [json.dumps({"amount": round(1 + rng.random() * 1999, 2), "hour_of_day": rng.randint(0, 23),
                        "transactions_24h": rng.randint(0, 40), "foreign_transaction": rng.randint(0, 1)}).encode()
            for _ in range(count)]


def _timed(name: str, spent: dict, call):
    def timed(*args, **kwargs):
        started = time.perf_counter_ns()
        try:
            return call(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter_ns() - started
    return timed


def instrumented(app, spent: dict):
    """The app's hooks wrapped with timers (named by the control that installed them)."""
    service = app.extensions["fraudpipe"]
    for kind in ("checks", "answer_gates", "sinks"):
        setattr(service, kind, [_timed(f"{hook.__module__.rsplit('.', 1)[-1]}: {getattr(hook, '__name__', 'hook')}",
                                       spent, hook) for hook in getattr(service, kind)])
    service.parse = _timed("parse", spent, service.parse)
    service.model.predict = _timed("model", spent, service.model.predict)
    return app


async def _round(front, key: str, requests: list[bytes]) -> float:
    started = time.process_time()
    for body in requests:
        protocol = _Protocol(body)
        await front.__rsgi__(_Scope(key, len(body)), protocol)
        if protocol.status != 200:
            raise SystemExit(f"/predict answered {protocol.status}: the benchmark measures answered requests")
    return time.process_time() - started


def hook_costs(settings, redis: str, rounds: int, varied: bool) -> None:
    forget_deployment(redis)  # one host: an earlier table still registered would move the ordering to Redis
    deployed = settings.with_overrides(rate_limit_storage=redis)
    spent: dict[str, dict] = {"hardened": defaultdict(int), "inherited": defaultdict(int)}
    apps = {"hardened": create_app("hardened", settings=deployed, host_monitor=host_monitor_for(deployed, "hardened")),
            "inherited": create_app("inherited", settings=settings)}
    fronts = {name: front_for(instrumented(app, spent[name]), settings, validated=name == "hardened")
              for name, app in apps.items()}
    requests, key, loop = bodies(200, varied), settings.api_keys[0], asyncio.new_event_loop()
    per_round: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in fronts}
    for _ in range(rounds):
        for name, front in fronts.items():
            spent[name].clear()
            total = loop.run_until_complete(_round(front, key, requests))
            per_round[name]["whole request (CPU)"].append(total / len(requests) * 1e6)
            for hook, ns in spent[name].items():
                per_round[name][hook].append(ns / len(requests) / 1e3)
    print(f"{'every query different' if varied else 'one transaction repeated'}: µs per request, "
          f"{rounds} rounds of {len(requests)}")
    print(f"| {'profile':<10} | {'hook':<34} | {'lowest':>7} | {'median':>7} |")
    print("|---|---|---:|---:|")
    for name, hooks in per_round.items():
        for hook, values in hooks.items():
            print(f"| {name:<10} | {hook:<34} | {min(values):>7.1f} | {statistics.median(values):>7.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    settings = trained_settings().with_overrides(rate_limit="1000000000/minute")
    with redis_server() as redis:
        for varied in (False, True):
            hook_costs(settings, redis, args.rounds, varied)


if __name__ == "__main__":
    main()
