"""What the assessment gives a CI pipeline: options, the gate's exit status, SARIF and a job summary.

Input files (accepted risks, the previous findings.json) are read at configure time so that a bad file
stops the run before any attack runs. At session end the CI options add to the assessment through its
typed fields (``accepted_risks``, ``comparison``, ``gate``) before findings.json is written, so every
output reads the same model. The gate changes the exit status only when every test passed: a failing
test keeps pytest's own status, which says more.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from security_tests.findings import BY_ID
from security_tests.report.accepted_risks import (acceptance_note, apply_acceptances, entry_note,
                                                  load_accepted_risks)
from security_tests.report.compare import change_lines, compare, comparison_line, load_previous
from security_tests.report.gate import FAIL_ON_CHOICES, GATE_EXIT_STATUS, gate_result
from security_tests.report.model import Acceptance, Assessment
from security_tests.redaction import inert


@dataclass(frozen=True)
class Inputs:
    accepted: list[Acceptance] = field(default_factory=list)
    previous: dict | None = None


INPUTS_KEY = pytest.StashKey[Inputs]()


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
    config.stash[INPUTS_KEY] = Inputs(load_accepted_risks(risks) if risks else [],
                                      load_previous(previous) if previous else None)


def add_ci_results(config: pytest.Config, assessment: Assessment) -> Assessment:
    """Acceptances, the comparison and the gate, each into its typed field of the assessment."""
    inputs = config.stash.get(INPUTS_KEY, Inputs())
    apply_acceptances(assessment, inputs.accepted)
    if inputs.previous is not None:
        assessment.comparison = compare(inputs.previous, assessment, config.getoption("compare_to"))
    threshold = config.getoption("fail_on")
    if threshold:
        assessment.gate = gate_result(assessment, threshold)
    return assessment


def console_lines(assessment: Assessment) -> list[str]:
    lines = [f"{entry.id}: {entry_note(entry)}" for entry in assessment.accepted_risks.entries]
    if assessment.comparison is not None:
        lines.append(comparison_line(assessment.comparison))
        lines += ["  " + line for line in change_lines(assessment.comparison)]
    gate = assessment.gate
    if gate is not None:
        lines += [f"gate --fail-on {gate.threshold}: FAIL {line}" for line in gate.failures]
        if gate.passed:
            lines.append(f"gate --fail-on {gate.threshold}: passed")
    return lines


def _write_summary(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    appending = path == os.environ.get("GITHUB_STEP_SUMMARY")
    with target.open("a" if appending else "w", encoding="utf-8") as handle:
        handle.write(text)


def finish(config: pytest.Config, session: pytest.Session, assessment: Assessment,
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

        _write_summary(config.getoption("summary"), render_summary(assessment))
        written.append(Path(config.getoption("summary")))
    if reporter is not None:
        for line in console_lines(assessment) + (["written: " + ", ".join(map(str, written))] if written else []):
            reporter.write_line(inert(line))
    if assessment.gate is not None and not assessment.gate.passed and session.exitstatus == 0:
        session.exitstatus = GATE_EXIT_STATUS


def case_properties(finding_id: str | None, result: str) -> list[tuple[str, str]]:
    """Properties each JUnit test case carries, beside the finding id and variant already there: ``status``
    is what this run showed (the finding's status is decided after the last run)."""
    if not finding_id or finding_id not in BY_ID:
        return []
    item = BY_ID[finding_id]
    return [("severity", item.severity.label), ("cvss_score", f"{item.cvss_score:.1f}"), ("status", result)]


def html_summary_lines(assessment: Assessment) -> list[str]:
    """Accepted risks, the comparison and the gate for the pytest-html summary."""
    lines = [f"<p><strong>{html.escape(f.id)}:</strong> {html.escape(acceptance_note(f))}</p>"
             for f in assessment.findings if f.accepted]
    if assessment.comparison is not None:
        lines.append(f"<p><strong>Comparison:</strong> {html.escape(comparison_line(assessment.comparison))}</p>")
    gate = assessment.gate
    if gate is not None:
        verdict = "passed" if gate.passed else "FAILED: " + "; ".join(gate.failures)
        lines.append(f"<p><strong>Gate (--fail-on {gate.threshold}):</strong> {html.escape(verdict)}</p>")
    return lines
