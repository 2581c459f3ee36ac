"""What the assessment gives a CI pipeline: options, the gate's exit status, SARIF and a job summary.

Input files (accepted risks, the previous findings.json) are read at configure time so that a bad file
stops the run before any attack runs. At session end the assessment dict is enriched (acceptances,
comparison, gate result, schema version) before findings.json is written, so every output reads the
same data. The gate changes the exit status only when every test passed: a failing test keeps pytest's
own status, which says more.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pytest

from security_tests.findings import BY_ID
from security_tests.report.accepted_risks import (acceptance_note, apply_acceptances, entry_note,
                                                  load_accepted_risks)
from security_tests.report.compare import change_lines, compare, comparison_line, load_previous
from security_tests.report.gate import FAIL_ON_CHOICES, GATE_EXIT_STATUS, gate_failures

SCHEMA_VERSION = "1.0"
INPUTS_KEY = pytest.StashKey[dict]()
ASSESSMENT_KEY = pytest.StashKey[dict]()


def add_options(group: pytest.OptionGroup) -> None:
    group.addoption("--sarif", metavar="PATH", help="write SARIF 2.1.0 (GitHub code scanning) to PATH")
    group.addoption("--fail-on", choices=FAIL_ON_CHOICES, default=None,
                    help=f"exit {GATE_EXIT_STATUS} when a finding at or above this computed (CVSS) severity is "
                         "open and not accepted, or an acceptance has expired")
    group.addoption("--accepted-risks", metavar="FILE",
                    help="TOML of [[accept]] entries (id, owner, reason, expires) that the gate lets through")
    group.addoption("--summary", metavar="PATH", default=os.environ.get("GITHUB_STEP_SUMMARY") or None,
                    help="write a markdown summary (default: append to $GITHUB_STEP_SUMMARY when set)")
    group.addoption("--compare-to", metavar="FINDINGS_JSON",
                    help="an earlier findings.json: report new, fixed, regressed and changed measurements")


def load_inputs(config: pytest.Config) -> None:
    """Read and check the input files on the controller; raises ``pytest.UsageError`` on a bad one."""
    if hasattr(config, "workerinput"):
        return
    risks, previous = config.getoption("accepted_risks"), config.getoption("compare_to")
    config.stash[INPUTS_KEY] = {
        "accepted": load_accepted_risks(risks) if risks else [],
        "previous": load_previous(previous) if previous else None,
    }


def enrich(config: pytest.Config, assessment: dict) -> dict:
    """Add schema version, acceptances, comparison and gate result to the assessment, in place."""
    inputs = config.stash.get(INPUTS_KEY, {"accepted": [], "previous": None})
    assessment["schema_version"] = SCHEMA_VERSION
    apply_acceptances(assessment, inputs["accepted"])
    if inputs["previous"] is not None:
        assessment["comparison"] = compare(inputs["previous"], assessment, config.getoption("compare_to"))
    threshold = config.getoption("fail_on")
    if threshold:
        assessment["gate"] = {"threshold": threshold, "failures": gate_failures(assessment, threshold)}
    config.stash[ASSESSMENT_KEY] = assessment
    return assessment


def _console_lines(assessment: dict) -> list[str]:
    lines = [f"{entry['id']}: {entry_note(entry)}" for entry in assessment["accepted_risks"]["entries"]]
    if assessment.get("comparison"):
        lines.append(comparison_line(assessment["comparison"]))
        lines += ["  " + line for line in change_lines(assessment["comparison"])]
    gate = assessment.get("gate")
    if gate:
        lines += [f"gate --fail-on {gate['threshold']}: FAIL {line}" for line in gate["failures"]]
        if not gate["failures"]:
            lines.append(f"gate --fail-on {gate['threshold']}: passed")
    return lines


def _write_summary(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    appending = path == os.environ.get("GITHUB_STEP_SUMMARY")
    with target.open("a" if appending else "w", encoding="utf-8") as handle:
        handle.write(text)


def finish(config: pytest.Config, session: pytest.Session, assessment: dict,
           reporter: pytest.TerminalReporter | None) -> None:
    """Write SARIF and the summary, print acceptances, changes and the gate, set the gate's exit status."""
    written = []
    if config.getoption("sarif"):
        from security_tests.report.sarif import build_sarif

        target = Path(config.getoption("sarif"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(build_sarif(assessment), indent=2) + "\n")
        written.append(target)
    if config.getoption("summary"):
        from security_tests.report.summary import render_summary

        _write_summary(config.getoption("summary"), render_summary(assessment, assessment.get("gate")))
        written.append(Path(config.getoption("summary")))
    if reporter is not None:
        for line in _console_lines(assessment) + (["written: " + ", ".join(map(str, written))] if written else []):
            reporter.write_line(line)
    gate = assessment.get("gate")
    if gate and gate["failures"] and session.exitstatus == 0:
        session.exitstatus = GATE_EXIT_STATUS


def case_properties(finding_id: str | None, status: str) -> list[tuple[str, str]]:
    """Properties each JUnit test case carries, beside the finding id and variant already there."""
    if not finding_id or finding_id not in BY_ID:
        return []
    item = BY_ID[finding_id]
    return [("severity", item.severity), ("cvss_score", f"{item.cvss_score:.1f}"), ("status", status)]


def html_summary_lines(config: pytest.Config) -> list[str]:
    """Accepted risks and the comparison for the pytest-html summary (written after findings.json)."""
    assessment = config.stash.get(ASSESSMENT_KEY, None)
    if not assessment:
        return []
    lines = [f"<p><strong>{html.escape(f['id'])}:</strong> {html.escape(acceptance_note(f))}</p>"
             for f in assessment["findings"] if f.get("accepted")]
    if assessment.get("comparison"):
        lines.append(f"<p><strong>Comparison:</strong> {html.escape(comparison_line(assessment['comparison']))}</p>")
    gate = assessment.get("gate")
    if gate:
        verdict = "FAILED: " + "; ".join(gate["failures"]) if gate["failures"] else "passed"
        lines.append(f"<p><strong>Gate (--fail-on {gate['threshold']}):</strong> {html.escape(verdict)}</p>")
    return lines
