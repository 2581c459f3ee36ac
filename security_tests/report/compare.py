"""What changed since an earlier run: findings that are new, fixed, regressed or unchanged, and the
measurements that moved.

Measurements are the numbers in each test's evidence (its query count and its named measurements), matched by test id, so a
change reads "HIGH-4 answered 100 -> 90" rather than as two unrelated reports. Wall-clock times are left
out: they move on every run and say nothing about the finding. The earlier run is read as the JSON it is;
this run is read from the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from security_tests.contract import FindingStatus
from security_tests.report.model import Comparison, FindingChange, MeasurementChange

if TYPE_CHECKING:
    from security_tests.report.model import Assessment

NOISE = ("seconds", "duration")
_OPEN_LABELS = {s.label for s in FindingStatus if s.is_open}
_CLOSED_LABELS = {s.label for s in FindingStatus if s.counts_as_closed}


MAX_PREVIOUS_BYTES = 256 << 20


def load_previous(path: str | Path) -> dict:
    """The earlier findings.json, checked for every field the comparison reads; one usage-error line (exit 4)
    naming the first that is wrong, before any attack runs."""
    path = Path(path)
    try:
        if not path.is_file():
            raise pytest.UsageError(f"--compare-to {path}: no file there")
        if path.stat().st_size > MAX_PREVIOUS_BYTES:
            raise pytest.UsageError(f"--compare-to {path}: larger than {MAX_PREVIOUS_BYTES >> 20} MiB, not a findings.json")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deep" if isinstance(exc, RecursionError) else exc
        raise pytest.UsageError(f"--compare-to {path}: not a findings.json ({reason})") from None
    problem = _previous_problem(data)
    if problem:
        raise pytest.UsageError(f"--compare-to {path}: not a findings.json: {problem}")
    return data


def _previous_problem(data) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        return "no 'findings' list"
    for key in ("generated", "code_version"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"'{key}' must be text"
    for number, finding in enumerate(data["findings"]):
        where = f"findings[{number}]"
        if not isinstance(finding, dict):
            return f"{where} is not an object"
        for key in ("id", "status"):
            if not isinstance(finding.get(key), str):
                return f"{where}.{key} must be text"
        if finding.get("measured") is not None and not isinstance(finding["measured"], str):
            return f"{where}.measured must be text"
        tests = finding.get("tests", [])
        if not isinstance(tests, list):
            return f"{where}.tests must be a list"
        for index, test in enumerate(tests):
            if not isinstance(test, dict) or not isinstance(test.get("nodeid"), str) \
                    or not isinstance(test.get("evidence", {}), dict) \
                    or not isinstance(test.get("evidence", {}).get("measurements", {}), dict):
                return f"{where}.tests[{index}] needs a text 'nodeid' and an object 'evidence'"
    return ""


def _numbers(tests) -> dict[tuple[str, str], float]:
    """``tests`` as (nodeid, evidence) pairs."""
    found = {}
    for nodeid, evidence in tests:
        name = nodeid.split("::")[-1]
        for key, value in {**evidence, **evidence.get("measurements", {})}.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in NOISE \
                    and not key.endswith("_seconds"):
                found[(name, key)] = value
    return found


def _category(old: str | None, new: str | None) -> str:
    if old is None:
        return "new"
    if new is None:
        return "not run"
    if old == new:
        return "unchanged"
    if new in _OPEN_LABELS and old not in _OPEN_LABELS:
        return "regressed"
    if old in _OPEN_LABELS and new in _CLOSED_LABELS:
        return "fixed"
    return "changed"


def compare(previous: dict, current: Assessment, source: str) -> Comparison:
    """The ``comparison`` of this run with ``previous`` (an earlier findings.json)."""
    old = {f["id"]: f for f in previous["findings"]}
    new = current.by_id
    changes, measurements = [], []
    for fid in [*new, *(i for i in old if i not in new)]:
        before, after = old.get(fid), new.get(fid)
        old_status, new_status = before["status"] if before else None, after.status.label if after else None
        if before and after:
            changes.append(FindingChange(fid, _category(old_status, new_status), old_status, new_status,
                                         str(before.get("measured") or before["status"]),
                                         after.measured or after.status.label))
            was = _numbers((t["nodeid"], t.get("evidence", {})) for t in before.get("tests", []))
            now = _numbers((run.nodeid, run.evidence) for run in after.runs)
            measurements += [MeasurementChange(fid, test, key, was[(test, key)], now[(test, key)])
                             for test, key in sorted(was.keys() & now.keys()) if was[(test, key)] != now[(test, key)]]
        else:
            changes.append(FindingChange(fid, _category(old_status, new_status), old_status, new_status))
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.change] = counts.get(change.change, 0) + 1
    return Comparison(source, previous.get("generated"), previous.get("code_version"), counts, tuple(changes),
                      tuple(measurements))


def comparison_line(comparison: Comparison) -> str:
    counts = comparison.counts
    text = ", ".join(f"{counts.get(name, 0)} {name}" for name in ("new", "fixed", "regressed", "unchanged"))
    extra = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())
                      if name not in ("new", "fixed", "regressed", "unchanged"))
    return (f"compared with {comparison.previous}: {text}{', ' + extra if extra else ''}; "
            f"{len(comparison.measurements)} measurement(s) changed")


def change_lines(comparison: Comparison, limit: int = 20) -> list[str]:
    """Findings whose status moved and measurements that changed, for the console."""
    lines = [f"{c.id}: {c.change} ({c.old_status} -> {c.new_status})"
             for c in comparison.findings if c.change != "unchanged"]
    lines += [f"{m.finding} {m.test} {m.measure}: {m.old} -> {m.new}" for m in comparison.measurements]
    return lines[:limit] + ([f"... {len(lines) - limit} more in findings.json"] if len(lines) > limit else [])
