"""SARIF 2.1.0 for GitHub code scanning: one rule per catalog finding, one result per finding not measured
blocked (fixed, or held on a single target).

Results point at the finding's entry in the catalog, the one place its text lives, so an alert opens on
the line someone has to change when the finding is closed or re-scored. Rule text is worded for the
target assessed. The fingerprint hashes only the finding id and rule, never a measurement or a time, so
the same open finding stays one alert across runs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

import security_tests.findings as catalog
from security_tests.report.accepted_risks import acceptance_note
from security_tests.report.gate import actively_accepted
from security_tests.redaction import markdown_inert

if TYPE_CHECKING:
    from security_tests.report.model import Assessment, FindingResult

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "ml-service-assessment"
REPO_ROOT = Path(catalog.__file__).resolve().parents[1]
CATALOG_URI = Path(catalog.__file__).resolve().relative_to(REPO_ROOT).as_posix()


def level(severity: str) -> str:
    return {"Critical": "error", "High": "error", "Medium": "warning"}.get(severity, "note")


def catalog_line(finding_id: str) -> int:
    """The line of ``id="<finding_id>"`` in the catalog source."""
    for number, line in enumerate(Path(catalog.__file__).read_text().splitlines(), 1):
        if re.search(rf'\bid="{re.escape(finding_id)}"', line):
            return number
    return 1


def _rule(item: catalog.WordedFinding) -> dict:
    tags = ["security", item.owasp, *item.atlas, *item.cwe, *(f"external/cwe/{c.lower()}" for c in item.cwe)]
    help_text = f"{item.risk}\n\nRemediation: {item.remediation}"
    return {
        "id": item.id,
        "name": "".join(word.capitalize() for word in re.findall(r"[A-Za-z0-9]+", item.title)),
        "shortDescription": {"text": item.title},
        "fullDescription": {"text": item.description},
        "help": {"text": help_text, "markdown": f"**Risk.** {_md(item.risk)}\n\n**Remediation.** {_md(item.remediation)}"},
        "defaultConfiguration": {"level": level(item.severity.label)},
        "properties": {"security-severity": f"{item.cvss_score:.1f}", "tags": tags, "precision": "high",
                       "cvss": item.cvss_vector, "owasp-ml": item.owasp_name},
    }


def _md(text: str) -> str:
    """Target-supplied words (a feature or label name) are data in markdown, not markup."""
    return markdown_inert(text)


def fingerprint(finding_id: str) -> str:
    return hashlib.sha256(f"{TOOL_NAME}:{finding_id}:{finding_id}".encode()).hexdigest()


def _result(finding: FindingResult, rule_index: int) -> dict:
    opened = finding.status.is_open
    severity = finding.finding.severity.label
    message = f"{finding.status.label}: {finding.measured or finding.status_meaning}"
    if finding.accepted:
        message += f" ({acceptance_note(finding)})"
    result = {
        "ruleId": finding.id, "ruleIndex": rule_index,
        "kind": "fail" if opened else "review", "level": level(severity) if opened else "none",
        "message": {"text": message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": CATALOG_URI, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": catalog_line(finding.id)}}}],
        "partialFingerprints": {"assessmentFinding/v1": fingerprint(finding.id)},
        "properties": {"status": finding.status.label, "status_code": finding.status.code, "severity": severity,
                       "cvss-score": finding.finding.cvss_score, "residual": finding.finding.residual},
    }
    if actively_accepted(finding):
        accepted = finding.accepted
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": f"{accepted.reason} (owner {accepted.owner}, "
                                                    f"until {accepted.expires})"}]
    return result


def build_sarif(assessment: Assessment) -> dict:
    rules = [_rule(item.worded(assessment.context.profile)) for item in catalog.FINDINGS]
    index = {rule["id"]: n for n, rule in enumerate(rules)}
    results = [_result(f, index[f.id]) for f in assessment.findings if not f.status.counts_as_closed]
    return {
        "$schema": SCHEMA_URI, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "version": assessment.code_version, "rules": rules}},
            "automationDetails": {"id": f"{TOOL_NAME}/"},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the repository root"}}},
            "results": results,
            "properties": {"target": assessment.context.target_name, "verdict": assessment.verdict,
                           "generated": assessment.generated},
        }],
    }
