"""What changed since an earlier run: findings that are new, fixed, regressed or unchanged, and the
measurements that moved.

Measurements are the numbers in each test's evidence (its query count and its named measurements), matched by test id, so a
change reads "HIGH-4 answered 100 -> 90" rather than as two unrelated reports. Wall-clock times are left
out: they move on every run and say nothing about the finding.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from security_tests.report.gate import FIXED_STATUS, is_open, measured_result

NOISE = ("seconds", "duration")


def load_previous(path: str | Path) -> dict:
    """The earlier findings.json; one usage-error line if it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise pytest.UsageError(f"--compare-to {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise pytest.UsageError(f"--compare-to {path}: not a findings.json (no 'findings' list)")
    return data


def _numbers(finding: dict) -> dict[tuple[str, str], float]:
    found = {}
    for test in finding.get("tests", []):
        name = test["nodeid"].split("::")[-1]
        evidence = test.get("evidence", {})
        for key, value in {**evidence, **evidence.get("measurements", {})}.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in NOISE \
                    and not key.endswith("_seconds"):
                found[(name, key)] = value
    return found


def _category(old: dict | None, new: dict | None) -> str:
    if old is None:
        return "new"
    if new is None:
        return "not run"
    if old["status"] == new["status"]:
        return "unchanged"
    if is_open(new) and not is_open(old):
        return "regressed"
    if is_open(old) and new["status"] == FIXED_STATUS:
        return "fixed"
    return "changed"


def _measurement_changes(fid: str, old: dict, new: dict) -> list[dict]:
    before, after = _numbers(old), _numbers(new)
    return [{"finding": fid, "test": test, "measure": key, "old": before[(test, key)], "new": after[(test, key)]}
            for test, key in sorted(before.keys() & after.keys()) if before[(test, key)] != after[(test, key)]]


def compare(previous: dict, current: dict, source: str) -> dict:
    """The ``comparison`` block of findings.json."""
    old = {f["id"]: f for f in previous["findings"]}
    new = {f["id"]: f for f in current["findings"]}
    findings, measurements = [], []
    for fid in [*new, *(i for i in old if i not in new)]:
        before, after = old.get(fid), new.get(fid)
        entry = {"id": fid, "change": _category(before, after),
                 "old_status": before["status"] if before else None,
                 "new_status": after["status"] if after else None}
        if before and after:
            was, now = measured_result(before), measured_result(after)
            entry.update({"old_summary": was, "new_summary": now, "summary_changed": was != now})
            measurements += _measurement_changes(fid, before, after)
        findings.append(entry)
    counts: dict[str, int] = {}
    for entry in findings:
        counts[entry["change"]] = counts.get(entry["change"], 0) + 1
    return {"previous": source, "previous_generated": previous.get("generated"),
            "previous_code_version": previous.get("code_version"), "counts": counts,
            "findings": findings, "measurements": measurements}


def comparison_line(comparison: dict) -> str:
    counts = comparison["counts"]
    text = ", ".join(f"{counts.get(name, 0)} {name}" for name in ("new", "fixed", "regressed", "unchanged"))
    extra = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())
                      if name not in ("new", "fixed", "regressed", "unchanged"))
    moved = len(comparison["measurements"])
    return (f"compared with {comparison['previous']}: {text}{', ' + extra if extra else ''}; "
            f"{moved} measurement(s) changed")


def change_lines(comparison: dict, limit: int = 20) -> list[str]:
    """Findings whose status moved and measurements that changed, for the console."""
    lines = [f"{e['id']}: {e['change']} ({e['old_status']} -> {e['new_status']})"
             for e in comparison["findings"] if e["change"] != "unchanged"]
    lines += [f"{m['finding']} {m['test']} {m['measure']}: {m['old']} -> {m['new']}"
              for m in comparison["measurements"]]
    return lines[:limit] + ([f"... {len(lines) - limit} more in findings.json"] if len(lines) > limit else [])
