"""The assessment as one JSON-safe dict: catalog, rows, statuses and context. findings.json is this dict;
the PDF renders it. Sorted throughout, so the output does not depend on test order or xdist scheduling."""

from __future__ import annotations

import os
import platform
from collections import Counter
import subprocess
from datetime import datetime, timezone

from security_tests.contract import Status
from security_tests.findings import FINDINGS, THREAT_MAP
from security_tests.report.records import (TestRow, finding_status, finding_status_counts, inherited_status,
                                           rows_by_finding)


def _code_version() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report_time() -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    return datetime.now(timezone.utc).replace(microsecond=0)


def build_assessment(rows: list[TestRow]) -> dict:
    by_finding = rows_by_finding(rows)
    recorded = next((row.evidence for row in rows if row.context and row.evidence), {})
    context = {**recorded.get("details", {}), "charts": recorded.get("charts", [])}
    findings = []
    bands = ("CRIT", "HIGH", "MED", "LOW")
    for item in sorted(FINDINGS, key=lambda f: (bands.index(f.id.split("-")[0]), int(f.id.split("-")[1]))):
        finding_rows = by_finding.get(item.id, [])
        if not finding_rows:
            continue
        findings.append({**item.as_dict(), "status": finding_status(finding_rows).label,
                         "inherited": inherited_status(finding_rows),
                         "tests": [row.as_dict() for row in finding_rows]})
    covered = {f["id"]: f for f in findings}
    threat_map = []
    for entry in THREAT_MAP:
        ids = sorted(fid for fid, f in covered.items() if entry["stage"] in (f["stage"], *f["also_stages"]))
        tests = sorted(t["nodeid"] for fid in ids for t in covered[fid]["tests"])
        statuses = sorted({covered[fid]["status"] for fid in ids})
        threat_map.append({**entry, "findings": ids, "tests": tests,
                           "status": ", ".join(statuses) if statuses else "Not covered"})
    statuses = finding_status_counts(rows)
    outcomes = dict(Counter(row.outcome for row in rows))
    live = any(row.variant is not None and row.variant.live for row in rows)
    black_box = sorted(f["id"] for f in findings if any(t["variant_detail"] and t["variant_detail"]["live"]
                                                         and t["outcome"] != "skipped"
                                                         for t in f["tests"]))
    by_hand = {f["id"]: sorted({t["message"] for t in f["tests"] if t["outcome"] == "skipped"})
               for f in findings if f["status"] == Status.NOT_ASSESSED.label}
    open_ids = [f["id"] for f in findings if f["status"] in (Status.OPEN.label, Status.ERROR.label)]
    residual_ids = [f["id"] for f in findings if f["status"] == Status.RESIDUAL_RISK.label]
    if open_ids:
        verdict = f"NOT READY: {len(open_ids)} finding(s) open on the hardened service ({', '.join(open_ids)})"
    elif residual_ids:
        verdict = (f"CONDITIONAL: every control verified; {len(residual_ids)} residual risk(s) remain open "
                   f"({', '.join(residual_ids)})")
    else:
        verdict = "READY: every finding verified fixed on the hardened service"
    return {
        "title": "fraudpipe security assessment",
        "generated": report_time().isoformat(),
        "code_version": _code_version(),
        "target": context.get("target", "in-process Flask test client"),
        "verdict": verdict,
        "context": context,
        "mode": "live (black-box)" if live else "in-process (white-box)",
        "assessed_black_box": black_box if live else [],
        "check_by_hand": by_hand,
        "environment": {"python": platform.python_version(), "platform": platform.platform(terse=True),
                        **context.get("versions", {})},
        "summary": {"finding_statuses": statuses, "test_outcomes": outcomes, "tests": len(rows)},
        "findings": findings,
        "threat_map": threat_map,
        "tests": [row.as_dict() for row in rows],
    }
