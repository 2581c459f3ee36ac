"""The CI gate: which open findings stop a pipeline at a chosen severity.

The gate reads the severity computed from each CVSS vector, not the band in the id: an id such as HIGH-3
is a reference people already use, while the vector is what the finding measures. Residual risks are open
findings like any other; only an unexpired acceptance takes a finding out of the gate.
"""

from __future__ import annotations

from security_tests.contract import Severity, Status

GATE_EXIT_STATUS = 6
FAIL_ON_CHOICES = ("critical", "high", "medium", "low")
OPEN_STATUSES = tuple(s.label for s in (Status.OPEN, Status.ERROR, Status.RESIDUAL_RISK))
FIXED_STATUS = Status.FIXED.label


def is_open(finding: dict) -> bool:
    return finding["status"] in OPEN_STATUSES


def at_or_above(severity: str, threshold: str) -> bool:
    return Severity.from_label(severity).rank <= Severity.from_label(threshold.capitalize()).rank


def measured_result(finding: dict) -> str:
    """What the decisive runs measured: the hardened (or live) cases' summaries, else any case's."""
    decisive = [t for t in finding["tests"] if t["variant"] in ("hardened", "live", None) and not t.get("context")]
    for tests in (decisive, finding["tests"]):
        summaries = [str(t["evidence"]["summary"]) for t in tests if t.get("evidence", {}).get("summary")]
        if summaries:
            return " | ".join(dict.fromkeys(summaries))
    return finding["status"]


def describe(finding: dict) -> str:
    return (f"{finding['id']} {finding['severity']} {finding['cvss_score']} {finding['status']}: "
            f"{finding['title']}")


def actively_accepted(finding: dict) -> bool:
    accepted = finding.get("accepted")
    return bool(accepted) and accepted["state"] == "active"


def gate_failures(assessment: dict, threshold: str) -> list[str]:
    """One line per reason the gate fails: an expired acceptance (an expiry is a decision someone must
    take again, whatever the severity), or an open finding at or above the threshold not accepted."""
    lines = [f"{entry['id']}: accepted risk expired on {entry['expires']} (owner {entry['owner']}); "
             "renew or remove the entry"
             for entry in assessment.get("accepted_risks", {}).get("entries", []) if entry["state"] == "expired"]
    for finding in assessment["findings"]:
        if is_open(finding) and at_or_above(finding["severity"], threshold) and not actively_accepted(finding):
            lines.append(f"{describe(finding)} (open, at or above {threshold})")
    return lines
