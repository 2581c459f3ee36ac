"""The run as markdown for a CI job summary: verdict, gate, findings, accepted risks and what changed."""

from __future__ import annotations

from security_tests.report.accepted_risks import acceptance_note
from security_tests.report.compare import comparison_line
from security_tests.report.gate import measured_result


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _comparison(comparison: dict) -> list[str]:
    lines = ["", "## Compared with the previous run", "", comparison_line(comparison), ""]
    moved = [(e["id"], e["change"], e["old_status"] or "-", e["new_status"] or "-") for e in comparison["findings"]]
    lines += _table(("ID", "change", "before", "now"), moved)
    changed_summaries = [(e["id"], e["old_summary"], e["new_summary"])
                         for e in comparison["findings"] if e.get("summary_changed")]
    if changed_summaries:
        lines += ["", "Measured results that changed:", ""]
        lines += _table(("ID", "before", "now"), changed_summaries)
    if comparison["measurements"]:
        lines += ["", "Measurements that changed:", ""]
        lines += _table(("ID", "test", "measure", "before", "now"),
                        [(m["finding"], m["test"], m["measure"], m["old"], m["new"]) for m in comparison["measurements"]])
    return lines


def render_summary(assessment: dict, gate: dict | None) -> str:
    lines = [f"# {assessment['title']}", "", f"**Verdict:** {assessment['verdict']}", ""]
    if gate is not None:
        outcome = "FAILED" if gate["failures"] else "passed"
        lines += [f"**Gate (`--fail-on {gate['threshold']}`):** {outcome}", ""]
        lines += [f"- {line}" for line in gate["failures"]] + ([""] if gate["failures"] else [])
    rows = [(f["id"], f["title"], f"{f['severity']} {f['cvss_score']}",
             f["status"] + (f" ({acceptance_note(f)})" if f.get("accepted") else ""), measured_result(f))
            for f in assessment["findings"]]
    lines += _table(("ID", "title", "severity", "status", "measured result"), rows)
    entries = assessment.get("accepted_risks", {}).get("entries", [])
    if entries:
        lines += ["", "## Accepted risks", ""]
        lines += _table(("ID", "state", "owner", "expires", "reason"),
                        [(e["id"], e["state"], e["owner"], e["expires"], e["reason"]) for e in entries])
    if assessment.get("comparison"):
        lines += _comparison(assessment["comparison"])
    return "\n".join(lines) + "\n"
