"""Requests per second on this machine's 2 cores, side by side in one run (loopback, wrk with 8 keep-alive
connections, the same transaction repeated): the stack's ceiling on granian (a bare WSGI callable and a
Flask hello world, 2 workers each), the seed's call pattern and today's-before hardened service on
gunicorn's sync worker (the baselines), and ``python -m fraudpipe serve --workers 2`` with the inherited
profile and with every control on and Redis limits (the monitor's state in the host table its workers
share); beside it the same hardened service with the monitor's state kept in each worker, which is what
sharing that state costs. The last two rows repeat inherited and hardened with every query different
(random transactions in the features' typical ranges): a repeated query takes the monitor's cheapest
path, organic traffic does not. Each row is its own deployment (Redis emptied before it, so no row counts as a
second host of the next). Per row: median req/s, p50 and p99 latency, and the server's CPU per answered
request (its processes' /proc ticks: steadier than req/s on a shared machine). Rows are minutes apart, and
this machine's speed drifts by a third within a minute, so the targets' ratios (hardened against
inherited) are also measured in interleaved pairs: both services up side by side, short wrk runs in turn
(I H, then H I, ...), the median of the pairs' ratios. Then the Redis commands per answered request and the
most answers one window held in a boundary burst."""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import TRANSACTION, trained_settings
from security_tests.attacks.client import HttpClient
from security_tests.attacks.rate_limit import boundary_burst
from security_tests.servers import (fraudpipe_serve, free_port, gunicorn_direct, process_tree, redis_monitor,
                                    redis_server, serve, settings_env)

LUA = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "{key}"
"""
# Organic traffic for the monitor: every query differs (a repeated one takes its cheapest path), within
# the features' typical ranges, so no rule fires on it.
VARIED_LUA = LUA + """math.randomseed(7)
request = function()
  local body = string.format('{{"amount": %.2f, "hour_of_day": %d, "transactions_24h": %d, "foreign_transaction": %d}}',
                             1 + math.random() * 1999, math.random(0, 23), math.random(0, 40), math.random(0, 1))
  return wrk.format(nil, nil, nil, body)
end
"""
_SCALE = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _latency(out: str, percentile: str) -> float | None:
    found = re.search(rf"{percentile}%\s+([\d.]+)(us|ms|s)", out)
    return float(found.group(1)) * _SCALE[found.group(2)] if found else None


def wrk(url: str, key: str, seconds: int, connections: int, varied: bool = False) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text((VARIED_LUA if varied else LUA).format(body=json.dumps(TRANSACTION), key=key))
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"{url}/predict"], capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    non_2xx = int(non2xx.group(1)) if non2xx else 0
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "non_2xx": non_2xx,
            "answered": total - non_2xx, "median_ms": _latency(out, "50"), "p99_ms": _latency(out, "99")}


def _cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / 100


def measured(server, key: str, args, varied: bool = False) -> dict:
    """A short warm-up, then the timed run with the server's CPU counted over it."""
    wrk(server.url, key, 1, args.connections, varied)
    pids = process_tree(server.process.pid)
    before = _cpu_seconds(pids)
    result = wrk(server.url, key, args.seconds, args.connections, varied)
    result["cpu_us"] = (_cpu_seconds(pids) - before) / max(1, result["answered"]) * 1e6
    return result


def forget_deployment(url: str) -> None:
    """Each row is its own deployment: the hosts an earlier row registered must not count as serving beside it
    (a second host moves the monitor's ordering to Redis, see ``fraudpipe.serving.monitor_host``)."""
    import redis

    redis.Redis.from_url(url).flushall()


def redis_calls(url: str) -> int:
    """Every command Redis has run, those inside scripts included (INFO commandstats)."""
    import redis

    return sum(entry["calls"] for entry in redis.Redis.from_url(url).info("commandstats").values())


def round_trips(server_url: str, key: str, redis: str, requests: int = 200) -> dict:
    """Redis commands per answered request, split into round trips (sent by a worker) and commands the
    limiter's script runs inside one of them (MONITOR)."""
    client = HttpClient(server_url, api_key=key)
    client.predict(TRANSACTION)
    with redis_monitor(redis) as counts:
        answered = sum(client.predict(TRANSACTION).ok for _ in range(requests))
    return {"round_trips": sum(counts["client"].values()) / answered, "client": dict(counts["client"]),
            "in_script": sum(counts["lua"].values()) / answered}


def boundary(settings, redis: str, root: Path) -> dict:
    """The boundary burst from the assessment, through serve with the limit in Redis (10/second)."""
    limited = settings.with_overrides(rate_limit="10/second", rate_limit_storage=redis)
    with fraudpipe_serve(limited, free_port(), root / "boundary.log", workers=2) as server:
        return boundary_burst(HttpClient(server.url, api_key=settings.api_keys[0]), TRANSACTION, 10, 1.0)


def granian(settings, port: int, log: Path, factory: str, interface: str = "wsgi"):
    threads = ["--blocking-threads", "1"] if interface == "wsgi" else []
    command = [sys.executable, "-m", "granian", "--interface", interface, "--workers", "2", *threads,
               "--no-ws", "--http", "1", "--factory", "--log-level", "warning", "--port", str(port), factory]
    return serve(command, settings_env(settings), port, log)


SERVICES = (("bare", "bare WSGI callable, granian WSGI 2 workers"),
            ("hello", "Flask hello world, granian WSGI 2 workers"),
            ("seed", "seed call pattern, gunicorn sync 2 workers"),
            ("before", "hardened, every control, gunicorn sync (old serve)"),
            ("inherited", "inherited, `serve --workers 2`"),
            ("per_worker", "hardened, Redis, monitor state per worker"),
            ("hardened", "hardened, every control, Redis, `serve --workers 2`"),
            ("inherited_varied", "inherited, every query different"),
            ("hardened_varied", "hardened, every query different"))


def interleaved(base, served, key: str, args, varied: bool) -> list[float]:
    """``served``'s req/s over ``base``'s, pair by pair: short wrk runs against the two in turn (base first,
    then served first, ...), so a slow stretch of the machine falls on both sides of a pair."""
    wrk(base.url, key, 1, args.connections, varied)
    wrk(served.url, key, 1, args.connections, varied)
    ratios = []
    for pair in range(args.pairs):
        first, second = (base, served) if pair % 2 == 0 else (served, base)
        rps = {first.url: wrk(first.url, key, args.pair_seconds, args.connections, varied)["rps"],
               second.url: wrk(second.url, key, args.pair_seconds, args.connections, varied)["rps"]}
        ratios.append(rps[served.url] / rps[base.url])
    return ratios


def run_once(settings, redis: str, root: Path, args, results: dict) -> dict:
    key, port = settings.api_keys[0], free_port
    deployed = settings.with_overrides(rate_limit_storage=redis)
    inherited = lambda: fraudpipe_serve(settings, port(), root / "inherited.log", workers=2, profile="inherited")  # noqa: E731
    hardened = lambda: fraudpipe_serve(deployed, port(), root / "hardened.log", workers=2)  # noqa: E731
    servers = {
        "bare": lambda: granian(settings, port(), root / "bare.log", "bench.common:bare_app"),
        "hello": lambda: granian(settings, port(), root / "hello.log", "bench.common:hello_app"),
        "seed": lambda: gunicorn_direct(settings, port(), root / "seed.log", 2, app="bench.common:seed_app_from_env()"),
        "before": lambda: gunicorn_direct(deployed, port(), root / "before.log", 2, app="fraudpipe:create_app()"),
        "inherited": inherited,
        "per_worker": lambda: granian(deployed, port(), root / "per_worker.log",
                                      "bench.common:hardened_per_worker_monitor_app", interface="rsgi"),
        "hardened": hardened,
        "inherited_varied": inherited,
        "hardened_varied": hardened,
    }
    for name, start in servers.items():
        forget_deployment(redis)
        with start() as server:
            before = redis_calls(redis)
            results[name].append(measured(server, key, args, varied=name.endswith("_varied")))
            results[name][-1]["redis_per_answer"] = (redis_calls(redis) - before) / max(1, results[name][-1]["answered"])
            if name == "hardened":
                trips = round_trips(server.url, key, redis)
    for varied in (False, True):  # fresh deployments: a history the repeated traffic flagged is cheaper to order
        forget_deployment(redis)
        with inherited() as base, hardened() as served:
            results["pairs_varied" if varied else "pairs"].append(interleaved(base, served, key, args, varied))
    return trips


def median_of(runs: list[dict], field: str) -> float:
    values = sorted(r[field] for r in runs if r.get(field) is not None)
    return values[len(values) // 2] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=16, help="interleaved pairs per run (hardened, inherited)")
    parser.add_argument("--pair-seconds", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    settings = trained_settings().with_overrides(rate_limit="1000000000/minute")
    root = Path(tempfile.mkdtemp(prefix="fraudpipe-serve-bench-"))
    results: dict[str, list] = {name: [] for name, _ in SERVICES} | {"pairs": [], "pairs_varied": []}
    with redis_server() as redis:
        trips = [run_once(settings, redis, root, args, results) for _ in range(args.runs)][-1]
        burst = boundary(settings, redis, root)
    rps = {name: median_of(results[name], "rps") for name, _ in SERVICES}
    cpu = {name: median_of(results[name], "cpu_us") for name, _ in SERVICES}
    print(f"machine: {platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
          f"cores; wrk 2 threads, {args.connections} keep-alive connections x {args.seconds} s, median of {args.runs} runs")
    print(f"| {'what is served':<52} | {'req/s':>7} | {'p50 ms':>6} | {'p99 ms':>6} | {'server CPU µs/req':>17} | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, label in SERVICES:
        print(f"| {label:<52} | {rps[name]:>7.0f} | {median_of(results[name], 'median_ms'):>6.2f} | "
              f"{median_of(results[name], 'p99_ms'):>6.2f} | {cpu[name]:>17.0f} | {max(r['non_2xx'] for r in results[name]):>7} |")
    for row, inherited in (("hardened", "inherited"), ("hardened_varied", "inherited_varied")):
        pairs = results["pairs_varied" if row.endswith("_varied") else "pairs"]
        medians = [statistics.median(ratios) for ratios in pairs]
        every = sorted(ratio for ratios in pairs for ratio in ratios)
        print(f"{row} / {inherited}, interleaved pairs ({args.pairs} x {args.pair_seconds} s per run): median "
              f"{statistics.median(every):.0%} (quartiles {every[len(every) // 4]:.0%}-{every[3 * len(every) // 4]:.0%}); "
              f"run by run {', '.join(f'{median:.0%}' for median in medians)}; "
              + "; ".join(f"target >= {target:.0%} met in {sum(median >= target for median in medians)} of "
                          f"{len(medians)} runs" for target in (0.7, 0.85)))
        for base, target in (("hello", 0.5), (inherited, 0.7), ("per_worker", None), ("before", None), ("bare", None)):
            if row == "hardened_varied" and base not in ("hello", inherited):
                continue
            share = rps[row] / rps[base]
            verdict = f" (target >= {target:.0%}: {'met' if share >= target else 'MISSED'})" if target else ""
            print(f"{row} / {base}: {share:.0%} of req/s{verdict}; CPU per request {cpu[row] / cpu[base]:.2f}x")
            if target and len(results[row]) > 1:  # the ratio within each run: its rows were measured minutes apart
                paired = sorted(mine["rps"] / theirs["rps"] for mine, theirs in zip(results[row], results[base]))
                print(f"  run by run: {', '.join(f'{each:.0%}' for each in paired)}")
    print(f"Redis per answered request: {trips['round_trips']:.2f} round trips {trips['client']} (MONITOR, 200 "
          f"requests), {trips['in_script']:.1f} commands inside the script; "
          f"{median_of(results['hardened'], 'redis_per_answer'):.2f} commands in all (INFO commandstats, wrk run); "
          f"every query different: {median_of(results['hardened_varied'], 'redis_per_answer'):.2f}")
    print(f"boundary burst at 10/second through serve + Redis: {burst.summary}")


if __name__ == "__main__":
    main()
