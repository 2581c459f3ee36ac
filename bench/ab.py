"""A change against the code it replaces, side by side: two git revisions of this repository, each served by
``python -m fraudpipe serve --workers 2`` (limits in Redis) under wrk, in interleaved rounds (A B, then B A,
...), so a slow stretch of a shared machine falls on both. Prints each round and the medians of req/s and of
the server's CPU per answered request. ``--in-process`` times instead the monitor's observe of one query
through the host table (what every answered ``/predict`` runs), in a fresh process per revision and round.
``--pairs N`` serves both revisions side by side instead (each with its own Redis: two deployments on one
would count as two hosts) and runs N pairs of short wrk runs against them in turn (``bench.serve``'s
interleaved pairs): a slow stretch of this machine then falls within a pair, not between rounds.

    python -m bench.ab HEAD~1 HEAD --rounds 4 --varied
    python -m bench.ab HEAD~1 HEAD --pairs 16
    python -m bench.ab HEAD /tmp/variant --in-process
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench.common import trained_settings
from bench.serve import forget_deployment, interleaved, measured, median_of
from security_tests.servers import free_port, redis_server, serve, settings_env

ROOT = Path(__file__).resolve().parent.parent
# Run inside each revision's tree: the seconds of one host-table observe, per query, median of 7 batches.
OBSERVE = """
import statistics, sys, time
import numpy as np
from fraudpipe.serving.monitor import QueryMonitor, observe_shared
from fraudpipe.serving.monitor_host import HostMonitorStore
from fraudpipe.serving.monitor_store import SharedMonitorStore
rng = np.random.default_rng(0)
queries = [np.array([round(rng.uniform(1, 2000), 2), rng.integers(0, 24), rng.integers(0, 41), rng.integers(0, 2)],
                    dtype=float) for _ in range(997)]
varied, batches = sys.argv[2] == "varied", []
host, monitor = HostMonitorStore(4, SharedMonitorStore(sys.argv[1]), slots=1024), QueryMonitor()
if hasattr(host, "observer"):  # the gate's path since the monitor's settings are bound once
    from fraudpipe.serving.monitor import PRADA_EVERY, PRADA_WINDOW, WINDOW, raised
    at_host = host.observer(False, WINDOW, PRADA_WINDOW, monitor.prada_min, PRADA_EVERY, monitor.rules)

    def observe_shared(host, monitor, names, query):
        seen = at_host(names, query)
        return seen and raised(host, monitor, names, query, seen)
for batch in range(8):
    started = time.perf_counter()
    for i in range(2000):
        observe_shared(host, monitor, (f"key-{i // 500}", "addr:127.0.0.1"), queries[i % 997] if varied else queries[0])
    batches.append((time.perf_counter() - started) / 2000)
print(statistics.median(batches[1:]))
"""


def checkout(revision: str) -> Path:
    """The revision's files in a temporary folder (``git archive``): the working tree is never touched. A
    folder that holds a ``fraudpipe`` package is used as it is (a variant not committed)."""
    if (Path(revision) / "fraudpipe" / "__init__.py").is_file():
        return Path(revision).resolve()
    folder = Path(tempfile.mkdtemp(prefix=f"fraudpipe-ab-{revision.replace('/', '_')}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "fraudpipe"], capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def served(tree: Path, settings, port: int, log: Path):
    argv = ["fraudpipe", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    code = (f"import sys, runpy; sys.path.insert(0, {str(tree)!r}); sys.argv = {argv!r}; "
            "runpy.run_module('fraudpipe', run_name='__main__')")
    return serve([sys.executable, "-c", code], settings_env(settings), port, log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--varied", action="store_true", help="every query different (else one repeated)")
    parser.add_argument("--in-process", action="store_true", help="time the monitor's observe, not wrk")
    parser.add_argument("--pairs", type=int, default=0, help="side by side: this many interleaved pairs")
    parser.add_argument("--pair-seconds", type=int, default=2)
    args = parser.parse_args()
    if args.a == args.b:
        raise SystemExit("name two revisions (a folder holding the same code counts as another)")
    trees = {args.a: checkout(args.a), args.b: checkout(args.b)}
    traffic = "varied" if args.varied else "repeated"
    settings = trained_settings().with_overrides(rate_limit="1000000000/minute")
    if args.pairs:
        return side_by_side(trees, settings, args, traffic)
    results: dict[str, list[dict]] = {revision: [] for revision in trees}
    with redis_server() as redis:
        deployed = settings.with_overrides(rate_limit_storage=redis)
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
            line = []
            for revision in order:
                forget_deployment(redis)
                if args.in_process:
                    out = subprocess.run([sys.executable, "-c", OBSERVE, redis, traffic], cwd=trees[revision],
                                         capture_output=True, text=True, check=True).stdout
                    result = {"us": float(out.split()[-1]) * 1e6}
                    line.append(f"{revision}: {result['us']:.1f} µs")
                else:
                    with served(trees[revision], deployed, free_port(), trees[revision] / "serve.log") as server:
                        m = measured(server, settings.api_keys[0], args, varied=args.varied)
                    result = m
                    line.append(f"{revision}: {m['rps']:.0f} req/s, {m['cpu_us']:.0f} µs CPU/req")
                results[revision].append(result)
            print(f"round {round_ + 1}: " + " | ".join(line), flush=True)
    fields = ("us",) if args.in_process else ("rps", "cpu_us")
    a, b = ([median_of(results[rev], field) for field in fields] for rev in (args.a, args.b))
    if args.in_process:
        print(f"{traffic}, one observe through the host table: {args.a} {a[0]:.1f} µs, {args.b} {b[0]:.1f} µs "
              f"({b[0] / a[0]:.2f}x)")
    else:
        print(f"{traffic}: {args.a} {a[0]:.0f} req/s, {a[1]:.0f} µs CPU/req; {args.b} {b[0]:.0f} req/s, "
              f"{b[1]:.0f} µs CPU/req; req/s {b[0] / a[0]:.2f}x, CPU per request {b[1] / a[1]:.2f}x")


def side_by_side(trees: dict[str, Path], settings, args, traffic: str) -> None:
    (a, tree_a), (b, tree_b) = trees.items()
    with redis_server() as redis_a, redis_server() as redis_b:
        own = {side: settings.with_overrides(rate_limit_storage=redis, audit_log=tree / f"audit-{side}.jsonl")
               for side, tree, redis in (("a", tree_a, redis_a), ("b", tree_b, redis_b))}
        with served(tree_a, own["a"], free_port(), tree_a / "serve-a.log") as one, \
                served(tree_b, own["b"], free_port(), tree_b / "serve-b.log") as two:
            ratios = interleaved(one, two, settings.api_keys[0], args, args.varied)
    print(f"{traffic}, {args.pairs} pairs of {args.pair_seconds} s: {b} / {a} req/s, pair by pair: "
          f"{', '.join(f'{ratio:.0%}' for ratio in ratios)}")
    quartiles = statistics.quantiles(ratios, n=4)
    print(f"median {statistics.median(ratios):.1%} (quartiles {quartiles[0]:.0%}-{quartiles[2]:.0%}); "
          f"{b} ahead in {sum(ratio > 1 for ratio in ratios)} of {len(ratios)} pairs")


if __name__ == "__main__":
    main()
