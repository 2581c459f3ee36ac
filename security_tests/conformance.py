"""One check over the whole catalog (as garak runs one test over every probe): each finding is tested in
every variant it defines, its control exists, its CVSS vector parses, and its severity note is there
exactly when the computed severity leaves the id's band."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from security_tests.findings import Finding

_COLLECT = """
import json, sys, pytest
found = {}
class Recorder:
    def pytest_collection_finish(self, session):
        for item in session.items:
            marker = item.get_closest_marker("finding")
            if marker is not None:
                callspec = getattr(item, "callspec", None)
                variant = callspec.params.get("variant") if callspec else None
                found.setdefault(marker.args[0], set()).add(getattr(variant, "id", variant))
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--no-assessment-pdf",
                    "--assessment-dir", sys.argv[2], sys.argv[1]], plugins=[Recorder()])
print("COLLECTED " + json.dumps({k: sorted(v, key=str) for k, v in found.items()}))
"""


def variants_by_finding(items: Iterable) -> dict[str, set[str | None]]:
    """Finding id -> the variants its collected tests run (None for a test without variants)."""
    found: dict[str, set[str | None]] = {}
    for item in items:
        marker = item.get_closest_marker("finding")
        if marker is not None:
            callspec = getattr(item, "callspec", None)
            variant = callspec.params.get("variant") if callspec else None
            found.setdefault(marker.args[0], set()).add(getattr(variant, "id", variant))
    return found


def collect_in_subprocess(suite: Path, scratch: Path) -> dict[str, set[str | None]]:
    """What ``pytest suite`` would run, when this session collected only part of it."""
    done = subprocess.run([sys.executable, "-c", _COLLECT, str(suite), str(scratch)], capture_output=True,
                          text=True, timeout=120, cwd=suite.parent)
    line = next((l for l in done.stdout.splitlines() if l.startswith("COLLECTED ")), None)
    if line is None:
        raise RuntimeError(f"collection failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return {k: set(v) for k, v in json.loads(line.removeprefix("COLLECTED ")).items()}


def catalog_problems(findings: Iterable[Finding], collected: dict[str, set[str | None]], controls: set[str],
                     expected_variants) -> list[str]:
    """Every way the catalog and the suite disagree; empty when they conform."""
    problems = []
    for item in findings:
        try:
            severity = item.severity
        except Exception as exc:  # the cvss library raises its own error types for a bad vector
            problems.append(f"{item.id}: CVSS vector {item.cvss_vector!r} does not parse ({type(exc).__name__})")
            continue
        if bool(item.severity_note) != (severity != item.id_band):
            problems.append(f"{item.id}: computed {severity}, id band {item.id_band}, but severity note "
                            f"{'present' if item.severity_note else 'missing'}")
        if item.control is not None and item.control not in controls:
            problems.append(f"{item.id}: control {item.control!r} exists neither in the app nor in training")
            continue
        ran = collected.get(item.id, set())
        wanted = set(expected_variants(item)) if item.control is not None or item.residual else {None}
        missing = sorted(str(v) for v in wanted - ran) if wanted != {None} else ([] if ran else ["any test"])
        if missing:
            problems.append(f"{item.id}: no test for {', '.join(missing)}")
    return problems
