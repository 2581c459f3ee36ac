"""One check over the whole catalog (as garak runs one test over every probe): each finding is tested in
every variant it defines, its control exists, its CVSS vector parses, and its severity note is there
exactly when the computed severity leaves the id's band; and over the engine: each finding's tests live in
one file named for it, each attack module serves one finding, and every finding test either runs live
(its attacks declare what they spend) or says what must be checked by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from security_tests import markers
from security_tests.findings import Finding

_COLLECT = """
import json, sys, pytest
from security_tests.conformance import variants_by_finding, engine_records
found, records = {}, []
class Recorder:
    def pytest_collection_finish(self, session):
        found.update(variants_by_finding(session.items))
        records.extend(engine_records(session.items))
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--no-assessment-pdf",
                    "--assessment-dir", sys.argv[2], sys.argv[1]], plugins=[Recorder()])
print("COLLECTED " + json.dumps({"variants": {k: sorted(v, key=str) for k, v in found.items()}, "records": records}))
"""


def variants_by_finding(items: Iterable) -> dict[str, set[str | None]]:
    """Finding id -> the variants its collected tests run (None for a test without variants)."""
    found: dict[str, set[str | None]] = {}
    for item in items:
        finding_id = markers.finding_of(item)
        if finding_id is not None:
            callspec = getattr(item, "callspec", None)
            variant = callspec.params.get("variant") if callspec else None
            found.setdefault(finding_id, set()).add(getattr(variant, "id", variant))
    return found


def engine_records(items: Iterable) -> list[dict]:
    """Per collected finding test: its file, the modules of the attacks it runs, whether they declare what
    they spend (so it runs live) and whether it needs the inside."""
    records = []
    for item in items:
        finding_id = markers.finding_of(item)
        if finding_id is None:
            continue
        functions = markers.attacks_of(item)
        records.append({"finding": finding_id, "file": Path(str(item.fspath)).name, "test": item.originalname,
                        "modules": sorted({f.__module__ for f in functions}),
                        "live": any(getattr(f, "spends", None) for f in functions),
                        "white_box": markers.white_box_reason(item) is not None})
    return records


def engine_problems(records: list[dict], attack_modules: Iterable[str]) -> list[str]:
    """Every way the suite breaks the engine's rules; empty when it keeps them."""
    problems = []
    files: dict[str, set[str]] = {}
    served: dict[str, set[str]] = {}
    for record in records:
        files.setdefault(record["finding"], set()).add(record["file"])
        for module in record["modules"]:
            served.setdefault(module, set()).add(record["finding"])
        if not record["live"] and not record["white_box"]:
            problems.append(f"{record['finding']}: {record['test']} neither runs live (an attack with @spends) "
                            "nor says what to check by hand (white_box)")
        if not record["modules"]:
            problems.append(f"{record['finding']}: {record['test']} names no attack (@runs)")
    for finding_id, names in sorted(files.items()):
        prefix = "test_" + finding_id.lower().replace("-", "") + "_"
        if len(names) != 1 or not next(iter(names)).startswith(prefix):
            problems.append(f"{finding_id}: tests in {', '.join(sorted(names))}; want one file {prefix}*.py")
    for module, findings in sorted(served.items()):
        if len(findings) != 1:
            problems.append(f"{module} serves {', '.join(sorted(findings))}; an attack module serves one finding")
    for module in sorted(set(attack_modules) - set(served)):
        problems.append(f"{module} is run by no finding's test")
    return list(dict.fromkeys(problems))


def collect_in_subprocess(suite: Path, scratch: Path) -> tuple[dict[str, set[str | None]], list[dict]]:
    """What ``pytest suite`` would run, when this session collected only part of it."""
    done = subprocess.run([sys.executable, "-c", _COLLECT, str(suite), str(scratch)], capture_output=True,
                          text=True, timeout=120, cwd=suite.parent)
    line = next((l for l in done.stdout.splitlines() if l.startswith("COLLECTED ")), None)
    if line is None:
        raise RuntimeError(f"collection failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    collected = json.loads(line.removeprefix("COLLECTED "))
    return {k: set(v) for k, v in collected["variants"].items()}, collected["records"]


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
        for needed in item.relies_on:
            if needed not in controls:
                problems.append(f"{item.id}: relies on {needed!r}, which is no control")
        if item.control is not None and item.control not in controls:
            problems.append(f"{item.id}: control {item.control!r} exists neither in the app nor in training")
            continue
        ran = collected.get(item.id, set())
        wanted = set(expected_variants(item)) if item.control is not None or item.residual else {None}
        missing = sorted(str(v) for v in wanted - ran) if wanted != {None} else ([] if ran else ["any test"])
        if missing:
            problems.append(f"{item.id}: no test for {', '.join(missing)}")
    return problems
