"""The run as markdown for a CI job summary: verdict, gate, findings, accepted risks and what changed.
Every cell is escaped: finding text names the target's own fields and labels, which are data here."""

from __future__ import annotations


from security_tests.report.accepted_risks import acceptance_note
from security_tests.report.compare import comparison_line
from security_tests.report.model import Assessment, Comparison
from security_tests.redaction import markdown_inert


def _cell(text) -> str:
    return markdown_inert(str(text), one_line=True)


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _comparison(comparison: Comparison) -> list[str]:
    lines = ["", "## Compared with the previous run", "", _cell(comparison_line(comparison)), ""]
    moved = [(c.id, c.change, c.old_status or "-", c.new_status or "-") for c in comparison.findings]
    lines += _table(("ID", "change", "before", "now"), moved)
    changed_summaries = [(c.id, c.old_summary, c.new_summary) for c in comparison.findings if c.summary_changed]
    if changed_summaries:
        lines += ["", "Measured results that changed:", ""]
        lines += _table(("ID", "before", "now"), changed_summaries)
    if comparison.measurements:
        lines += ["", "Measurements that changed:", ""]
        lines += _table(("ID", "test", "measure", "before", "now"),
                        [(m.finding, m.test, m.measure, m.old, m.new) for m in comparison.measurements])
    return lines


def render_summary(assessment: Assessment) -> str:
    lines = [f"# {_cell(assessment.title)}", "", f"**Verdict:** {_cell(assessment.verdict)}", ""]
    gate = assessment.gate
    if gate is not None:
        lines += [f"**Gate (`--fail-on {gate.threshold}`):** {'passed' if gate.passed else 'FAILED'}", ""]
        lines += [f"- {_cell(line)}" for line in gate.failures] + ([""] if gate.failures else [])
    rows = [(f.id, f.title, f"{f.finding.severity.label} {f.finding.cvss_score}",
             f.status.label + (f" ({acceptance_note(f)})" if f.accepted else ""), f.headline)
            for f in assessment.findings]
    lines += _table(("ID", "title", "severity", "status", "measured result"), rows)
    lines += ["", "Each finding's whole measurement and every run's evidence: `findings.json` and the PDF's finding "
              "pages."]
    entries = assessment.accepted_risks.entries
    if entries:
        lines += ["", "## Accepted risks", ""]
        lines += _table(("ID", "state", "owner", "expires", "reason"),
                        [(e.id, e.state, e.owner, e.expires, e.reason) for e in entries])
    if assessment.comparison is not None:
        lines += _comparison(assessment.comparison)
    return "\n".join(lines) + "\n"
