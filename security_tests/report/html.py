"""The pytest-html page as a security page: the findings first, then each run with its evidence inline.

Evidence is HTML inside the row (tables, request samples, charts as inline images), never a link to a
``data:`` URL, which browsers refuse to open; an open residual risk shows its measurement, not a traceback.
Every text is escaped: finding text names the target's fields and labels, and evidence quotes its answers.
"""

from __future__ import annotations

import base64
from html import escape

from security_tests.contract import RunResult, Variant
from security_tests.report import colours, plain
from security_tests.report.charts import render_chart
from security_tests.report.model import Assessment

STYLE = """<style>
.fp-findings{border-collapse:collapse;margin:8px 0 16px;font-size:13px;width:100%}
.fp-findings th,.fp-findings td,.fp-evidence th,.fp-evidence td{border:1px solid #ccc;padding:3px 6px;
 text-align:left;vertical-align:top}
.fp-findings th,.fp-evidence th{background:#e1e6ee}
.fp-evidence{border-collapse:collapse;margin:4px 0 8px;font-size:12px}
.fp-status{font-weight:bold}
.fp-sample{background:#f4f4f4;padding:6px;white-space:pre-wrap;font-family:monospace;font-size:12px}
.fp-evidence-block{white-space:normal;font-family:sans-serif}
body{display:flex;flex-direction:column}
body>*{order:5}
#title,#title+p{order:0}
.summary{order:1}
#fp-environment{order:2;margin:8px 0}
.summary__data>h2{display:none}
</style>"""

FOLD_ENVIRONMENT = """<details id="fp-environment"><summary>Environment (Python, platform, packages)</summary></details>
<script>document.addEventListener("DOMContentLoaded",function(){var f=document.getElementById("fp-environment");
["environment-header","environment"].forEach(function(id){var e=document.getElementById(id);if(e){f.appendChild(e);}});
document.body.appendChild(f);});</script>"""
"""The page opens on the verdict: pytest-html's environment table is moved into a folded section below it."""


def measured_heading(assessment: Assessment) -> str:
    return "Measured on this target" if assessment.context.single_target else "Measured on the hardened service"


def findings_summary(assessment: Assessment) -> str:
    """Every finding with its severity, status and the measurement behind that status, above the test table."""
    rows = "".join(
        f'<tr class="fp-finding" data-finding="{escape(f.id)}" data-status-code="{f.status.code}">'
        f"<td>{escape(f.id)}</td><td>{escape(f.title)}</td>"
        f"<td>{escape(f.finding.severity.label)} {f.finding.cvss_score}"
        + (f" (id band {escape(f.finding.id_band.label)})" if f.severity_differs else "")
        + f'</td><td class="fp-status" style="color:{colours.css(colours.STATUS[f.status])}">'
        f"{escape(f.status.label)}</td>"
        + _measured_cell(f)
        + (f"<br><b>Risk that remains:</b> {escape(f.remaining_risk)}" if f.remaining_risk else "")
        + (f"<br><i>{escape(plain.accepted_text(f.accepted))}</i>" if f.accepted else "")
        + "</td></tr>"
        for f in assessment.findings)
    legend = "".join(f"<li><b>{escape(status.label)}</b>: {escape(meaning)}</li>"
                     for status, meaning in assessment.legend)
    return (f"{STYLE}{FOLD_ENVIRONMENT}<h2 id=\"fp-findings\">Findings: {escape(assessment.title)}</h2>"
            f"<p class=\"fp-verdict\"><b>{escape(assessment.verdict)}</b></p>"
            f"<p>Target: {escape(assessment.context.named)}. {escape(assessment.count.sentence)}; "
            f"{escape(assessment.findings_sentence)}.</p>"
            '<table class="fp-findings"><thead><tr><th>ID</th><th>Finding</th><th>Severity (CVSS 3.1)</th>'
            f"<th>Status</th><th>{measured_heading(assessment)}</th></tr></thead><tbody>{rows}</tbody></table>"
            + _comparison(assessment) +
            f"<details><summary>What each status means</summary><ul>{legend}</ul></details>"
            "<p>Below: every test run. Assessment runs come first, sorted by finding; unit tests are marked "
            "“unit test”. Open a row to see what it measured.</p>")


def _measured_cell(f) -> str:
    """The headline, and the whole measured text one click away when it says more."""
    full = plain.text(f.measured or f.status_meaning)
    short = plain.text(f.headline)
    if short == full:
        return f"<td>{escape(full)}"
    return f"<td><details><summary>{escape(short)}</summary>{escape(full)}</details>"


def _comparison(assessment: Assessment) -> str:
    if assessment.comparison is None:
        return ""
    header, rows = plain.comparison_table(assessment.comparison)
    return "<h3>Changes since the last run</h3>" + (_table(header, rows) if rows else "<p>No finding changed status.</p>")


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="fp-evidence"><tr>{head}</tr>{body}</table>'


def evidence_html(evidence: dict, variant: Variant | None, result: RunResult) -> str:
    """What one run measured, inline: result, summary, values, details, samples and charts."""
    parts = [f"<p><b>{escape(plain.variant_name(variant))}: {escape(result.words)}.</b> "
             f"{escape(plain.text(str(evidence.get('summary', ''))))}</p>"]
    if evidence.get("residual") and variant is not None and variant.judges_fix:
        parts.append(f"<p><b>Risk that remains:</b> {escape(plain.text(evidence['residual']))}</p>")
    if evidence.get("measurements"):
        parts.append(_table(["Measurement", "Value"], plain.measurement_rows(evidence["measurements"])))
    if evidence.get("details"):
        parts.append(_table(["Detail", "Value"], plain.detail_rows(evidence["details"])))
    for sample in evidence.get("samples", []):
        parts.append(f"<p><b>{escape(str(sample['label']))}</b></p>"
                     f'<div class="fp-sample">{escape(plain.sample_lines(sample))}</div>')
    for spec in evidence.get("charts", []):
        png = base64.b64encode(render_chart(spec)).decode()
        parts.append(f'<figure><img alt="{escape(spec["title"])}" style="max-width:640px" '
                     f'src="data:image/png;base64,{png}"><figcaption>{escape(spec["title"])}</figcaption></figure>')
    return f'<div class="fp-evidence-block">{"".join(parts)}</div>'


def sort_key(finding_id: str | None, variant: Variant | None, kind: str) -> str:
    """A hidden key so the table lists assessment runs by finding (worst band first), then unit tests."""
    if finding_id:
        band, number = finding_id.split("-")
        order = 2 if variant is None else 0 if variant.is_baseline else 1
        isolated = 1 if variant is not None and variant.isolates else 0
        return f"0{('CRIT', 'HIGH', 'MED', 'LOW').index(band)}{int(number):02d}{order}{isolated}"
    return "1" if kind != "unit test" else "2"
