"""Requests per second through gunicorn (2 workers, loopback, 8 connections), side by side:
the seed's call pattern served the same way, and the hardened service with every control on and
Redis-backed limits. Load from wrk (Debian package) on 127.0.0.1 for a fixed duration."""

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
from security_tests.servers import fraudpipe_serve, free_port, gunicorn_direct, redis_server

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
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {"rps": rps, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "median_ms": float(median.group(1)) * scale[median.group(2)] if median else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    settings = trained_settings().with_overrides(rate_limit="1000000000/minute")
    key = settings.api_keys[0]
    root = Path(tempfile.mkdtemp(prefix="fraudpipe-serve-bench-"))
    results: dict[str, list[dict]] = {"seed": [], "inherited": [], "hardened": []}
    with redis_server() as redis:
        hardened = settings.with_overrides(rate_limit_storage=redis)
        for _ in range(args.runs):
            with gunicorn_direct(settings, free_port(), root / "seed.log", 2, app="bench.common:seed_app_from_env()") as s:
                results["seed"].append(wrk(s.url, key, args.seconds, args.connections))
            with gunicorn_direct(settings, free_port(), root / "inherited.log", 2,
                                 app="fraudpipe:create_app('inherited')") as i:
                results["inherited"].append(wrk(i.url, key, args.seconds, args.connections))
            with fraudpipe_serve(hardened, free_port(), root / "hardened.log", workers=2) as h:
                results["hardened"].append(wrk(h.url, key, args.seconds, args.connections))
    median = {name: sorted(r["rps"] for r in runs)[len(runs) // 2] for name, runs in results.items()}
    latency = {name: sorted(r["median_ms"] for r in runs)[len(runs) // 2] for name, runs in results.items()}
    print(f"machine: {platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
          f"cores; gunicorn 2 sync workers; wrk {args.connections} connections x {args.seconds} s, "
          f"median of {args.runs} runs")
    print(f"{'service':<52}{'req/s':>10}{'median latency':>16}{'non-2xx':>9}")
    for name, label in (("seed", "seed call pattern (predict + predict_proba, n_jobs=-1)"),
                        ("inherited", "inherited profile (seed interface, fast model call)"),
                        ("hardened", "hardened, every control on, limits in Redis")):
        print(f"{label:<52}{median[name]:>10.0f}{latency[name]:>13.2f} ms{max(r['non_2xx'] for r in results[name]):>9}")
    print(f"ratio hardened / seed: {median['hardened'] / median['seed']:.0f}x; "
          f"target >= 800 req/s: {'met' if median['hardened'] >= 800 else 'MISSED'}")


if __name__ == "__main__":
    main()
