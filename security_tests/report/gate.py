"""The CI gate: which open findings stop a pipeline at a chosen severity.

The gate reads the severity computed from each CVSS vector, not the band in the id: an id such as HIGH-3
is a reference people already use, while the vector is what the finding measures. Residual risks are open
findings like any other; only an unexpired acceptance takes a finding out of the gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from security_tests.contract import Severity
from security_tests.report.model import GateResult

if TYPE_CHECKING:
    from security_tests.report.model import Assessment, FindingResult

GATE_EXIT_STATUS = 6
FAIL_ON_CHOICES = ("critical", "high", "medium", "low")
def at_or_above(severity: Severity, threshold: str) -> bool:
    return severity.rank <= Severity.from_label(threshold.capitalize()).rank


def describe(finding: FindingResult) -> str:
    item = finding.finding
    return f"{item.id} {item.severity.label} {item.cvss_score} {finding.status.label}: {finding.title}"


def actively_accepted(finding: FindingResult) -> bool:
    return finding.accepted is not None and finding.accepted.state == "active"


def gate_result(assessment: Assessment, threshold: str) -> GateResult:
    """One line per reason the gate fails: an expired acceptance (an expiry is a decision someone must
    take again, whatever the severity), or an open finding at or above the threshold not accepted."""
    lines = [f"{entry.id}: accepted risk expired on {entry.expires} (owner {entry.owner}); renew or remove the entry"
             for entry in assessment.accepted_risks.entries if entry.state == "expired"]
    for finding in assessment.findings:
        if finding.status.is_open and at_or_above(finding.finding.severity, threshold) \
                and not actively_accepted(finding):
            lines.append(f"{describe(finding)} (open, at or above {threshold})")
    return GateResult(threshold, tuple(lines))
