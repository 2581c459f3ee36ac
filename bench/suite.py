"""The full test suite's wall time (pytest, all tests), and the in-process assessment alone, median of runs."""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str]) -> float:
    out = tempfile.mkdtemp()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider", f"--assessment-dir={out}",
                    f"--html={out}/r.html"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, median of {args.runs} runs")
    for label, argv in (("pytest security_tests", ["security_tests"]), ("pytest (every test)", []),
                        ("pytest -n 2 (every test)", ["-n", "2"])):
        runs = sorted(timed(argv) for _ in range(args.runs))
        print(f"{label:<28}{runs[len(runs) // 2]:>8.1f} s")


if __name__ == "__main__":
    main()
