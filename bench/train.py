"""Training time and peak memory at 10k, 100k and 1M rows: the whole train job (data, gate, fit,
evaluate, charts, sign), each size in its own process so peak RSS is that size's alone."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
from fraudpipe.data import Recipe
from fraudpipe.pipeline import train
from fraudpipe.settings import Settings
root = Path(tempfile.mkdtemp())
settings = Settings(artifacts_dir=root / "m", signing_key=root / "k.pem", trusted_key=root / "k.pub")
started = time.perf_counter()
metrics = train(settings, recipe=Recipe(n_rows=int(sys.argv[1])), progress=lambda _: None)
print(json.dumps({"seconds": time.perf_counter() - started, "recall": metrics["recall"],
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, median of {args.runs} runs")
    print(f"{'rows':>10}{'train seconds':>16}{'peak MiB':>10}{'s per 10k rows':>16}")
    base = None
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD, str(size)], capture_output=True, text=True,
                                          check=True).stdout)
                for _ in range(args.runs)]
        seconds = sorted(r["seconds"] for r in runs)[len(runs) // 2]
        peak = sorted(r["peak_mib"] for r in runs)[len(runs) // 2]
        base = base or seconds / size
        print(f"{size:>10,}{seconds:>16.2f}{peak:>10.0f}{seconds / size * 10_000:>16.3f}"
              f"   ({seconds / size / base:.2f}x the smallest size's per-row cost)")


if __name__ == "__main__":
    main()
