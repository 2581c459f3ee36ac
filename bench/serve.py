"""Requests per second through gunicorn (2 workers, loopback, 8 connections), side by side: the seed's
call pattern, the inherited profile, hardened without the limiter, and hardened with every control on and
Redis-backed limits; then the Redis commands each answered request costs and the most answers one window
held in a boundary burst. Load from wrk (Debian package) on 127.0.0.1 for a fixed duration."""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.common import TRANSACTION, trained_settings
from security_tests.attacks.client import HttpClient
from security_tests.attacks.rate_limit import boundary_burst
from security_tests.servers import fraudpipe_serve, free_port, gunicorn_direct, redis_monitor, redis_server

LUA = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "{key}"
"""


def wrk(url: str, key: str, seconds: int, connections: int) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(LUA.format(body=json.dumps(TRANSACTION), key=key))
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"{url}/predict"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    non_2xx = int(non2xx.group(1)) if non2xx else 0
    return {"rps": rps, "non_2xx": non_2xx, "answered": total - non_2xx,
            "median_ms": float(median.group(1)) * scale[median.group(2)] if median else None}


def redis_calls(url: str) -> int:
    """Every command Redis has run, those inside scripts included (INFO commandstats)."""
    import redis

    return sum(entry["calls"] for entry in redis.Redis.from_url(url).info("commandstats").values())


def wrk_counting_redis(url: str, key: str, args, redis: str) -> dict:
    before = redis_calls(redis)
    result = wrk(url, key, args.seconds, args.connections)
    result["redis_per_answer"] = (redis_calls(redis) - before) / max(1, result["answered"])
    return result


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
    """The boundary burst from the assessment, through gunicorn with the limit in Redis (10/second)."""
    limited = settings.with_overrides(rate_limit="10/second", rate_limit_storage=redis)
    with fraudpipe_serve(limited, free_port(), root / "boundary.log", workers=2) as server:
        return boundary_burst(HttpClient(server.url, api_key=settings.api_keys[0]), TRANSACTION, 10, 1.0)


SERVICES = (("seed", "seed call pattern (predict + predict_proba, n_jobs=-1)"),
            ("inherited", "inherited profile (seed interface, fast model call)"),
            ("no_limit", "hardened without rate_limit"),
            ("hardened", "hardened, every control on, limits in Redis"))


def run_once(settings, redis: str, root: Path, args, results: dict) -> dict:
    key = settings.api_keys[0]
    apps = {"seed": "bench.common:seed_app_from_env()", "inherited": "fraudpipe:create_app('inherited')",
            "no_limit": "fraudpipe:create_app('hardened', controls_off=('rate_limit',))"}
    for name, app in apps.items():
        with gunicorn_direct(settings, free_port(), root / f"{name}.log", 2, app=app) as server:
            results[name].append(wrk(server.url, key, args.seconds, args.connections))
    with fraudpipe_serve(settings.with_overrides(rate_limit_storage=redis), free_port(), root / "hardened.log",
                         workers=2) as server:
        results["hardened"].append(wrk_counting_redis(server.url, key, args, redis))
        return round_trips(server.url, key, redis)


def median_of(runs: list[dict], field: str) -> float:
    return sorted(r[field] for r in runs)[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    settings = trained_settings().with_overrides(rate_limit="1000000000/minute")
    root = Path(tempfile.mkdtemp(prefix="fraudpipe-serve-bench-"))
    results: dict[str, list[dict]] = {name: [] for name, _ in SERVICES}
    with redis_server() as redis:
        trips = [run_once(settings, redis, root, args, results) for _ in range(args.runs)][-1]
        burst = boundary(settings, redis, root)
    rps = {name: median_of(runs, "rps") for name, runs in results.items()}
    print(f"machine: {platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
          f"cores; gunicorn 2 sync workers; wrk {args.connections} connections x {args.seconds} s, "
          f"median of {args.runs} runs")
    print(f"{'service':<52}{'req/s':>10}{'median latency':>16}{'non-2xx':>9}")
    for name, label in SERVICES:
        print(f"{label:<52}{rps[name]:>10.0f}{median_of(results[name], 'median_ms'):>13.2f} ms"
              f"{max(r['non_2xx'] for r in results[name]):>9}")
    ratio = rps["hardened"] / rps["inherited"]
    print(f"ratio hardened / inherited: {ratio:.0%} (target >= 70 %: {'met' if ratio >= 0.7 else 'MISSED'}); "
          f"hardened / seed: {rps['hardened'] / rps['seed']:.0f}x; "
          f"hardened >= 2,000 req/s: {'met' if rps['hardened'] >= 2000 else 'MISSED'}")
    print(f"Redis per answered request: {trips['round_trips']:.2f} round trips {trips['client']} (MONITOR, 200 "
          f"requests), {trips['in_script']:.1f} commands inside the script; "
          f"{median_of(results['hardened'], 'redis_per_answer'):.2f} commands in all (INFO commandstats, wrk run)")
    print(f"boundary burst at 10/second through gunicorn + Redis: {burst.summary}")


if __name__ == "__main__":
    main()
