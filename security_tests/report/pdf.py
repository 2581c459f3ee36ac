"""The PDF a security engineer hands to management, rendered with fpdf2 from the assessment dict.

Every number in it comes from the assessment dict, which comes from this run's evidence. With
``SOURCE_DATE_EPOCH`` set, identical results give byte-identical files.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from security_tests.contract import Severity, Status
from security_tests.report.assessment import report_time
from security_tests.report.charts import render_chart

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
STATUS_COLOURS = {status.label: status.colour for status in Status}


class AssessmentPDF(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc_title = title
        self.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.add_font("DejaVu", "I", str(FONT_DIR / "DejaVuSans-Oblique.ttf"))
        self.add_font("DejaVuMono", "", str(FONT_DIR / "DejaVuSansMono.ttf"))
        self.set_auto_page_break(auto=True, margin=16)
        self.set_margins(16, 16, 16)
        self.alias_nb_pages()

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font("DejaVu", "I", 7.5)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, self.doc_title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", "", 7.5)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)

    def heading(self, text: str, level: int = 0) -> None:
        if level == 0:
            self.add_page()
        else:
            self.ln(2)
        self.start_section(text, level=level)
        self.set_font("DejaVu", "B", 15 if level == 0 else 11.5)
        self.multi_cell(0, 8 if level == 0 else 6.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)

    def para(self, text: str, size: float = 9.5, style: str = "") -> None:
        self.set_font("DejaVu", style, size)
        self.multi_cell(0, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.2)

    def label(self, name: str, text: str) -> None:
        self.set_font("DejaVu", "B", 9.5)
        self.cell(0, 5.5, name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.para(text)

    def mono(self, text: str, size: float = 7.5) -> None:
        self.set_font("DejaVuMono", "", size)
        self.set_fill_color(244, 244, 244)
        self.multi_cell(0, size * 0.48, text, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)

    def coloured(self, text: str, colour: tuple[int, int, int], size: float = 9.5) -> None:
        self.set_text_color(*colour)
        self.para(text, size, "B")
        self.set_text_color(0, 0, 0)

    def grid(self, header: list[str], rows: list[list[str]], widths: tuple, size: float = 7.5,
             colour_column: int | None = None) -> None:
        self.set_font("DejaVu", "", size)
        with self.table(col_widths=widths, text_align="LEFT", line_height=size * 0.5,
                        headings_style=_heading_style(), first_row_as_headings=True) as table:
            table.row(header)
            for values in rows:
                row = table.row()
                for index, value in enumerate(values):
                    if index == colour_column and value in STATUS_COLOURS:
                        from fpdf.fonts import FontFace

                        row.cell(value, style=FontFace(color=STATUS_COLOURS[value], emphasis="BOLD"))
                    else:
                        row.cell(value)
        self.ln(2)

    def chart(self, png: bytes, caption: str, width: float = 140) -> None:
        if self.get_y() > 190:
            self.add_page()
        self.image(io.BytesIO(png), w=width, x=(self.w - width) / 2)
        self.set_font("DejaVu", "I", 7.5)
        self.multi_cell(0, 4, caption, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)


def _heading_style():
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(225, 230, 238))


def _short(value, limit: int = 1800) -> str:
    text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "\n… (truncated; full evidence in findings.json)"


def _test_name(nodeid: str) -> str:
    return nodeid.split("::")[-1]


def _shown(test: dict) -> bool:
    """Inherited, hardened, live and variant-less rows are shown in full; isolation rows only in the table."""
    return not test["control_isolation"]


def residual_sentences(assessment: dict) -> list[str]:
    """Plain sentences, each from a number measured on the hardened service in this run."""
    sentences = []
    for finding in assessment["findings"]:
        measured = [f"{finding['id']}: {test['evidence']['residual']}" for test in finding["tests"]
                    if test["judges_fix"] and test["evidence"].get("residual")]
        sentences.extend(measured)
        if finding["status"] == Status.RESIDUAL_RISK.label and not measured:
            summaries = [t["evidence"].get("summary") for t in finding["tests"]
                         if (t["judges_fix"] or t["variant"] is None) and t["evidence"].get("summary")]
            sentences.append(f"{finding['id']} {finding['title']} remains open: {summaries[0] if summaries else ''}")
    return sorted(set(sentences))


def _cover(pdf: AssessmentPDF, a: dict) -> None:
    pdf.add_page()
    pdf.start_section("Cover", level=0)
    pdf.ln(18)
    pdf.set_font("DejaVu", "B", 24)
    pdf.multi_cell(0, 12, "Security assessment", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 14)
    pdf.multi_cell(0, 8, "fraudpipe fraud-detection model service", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    verdict_colour = (190, 30, 30) if a["verdict"].startswith("NOT") else (
        (200, 110, 0) if a["verdict"].startswith("CONDITIONAL") else (26, 127, 55))
    pdf.coloured(a["verdict"], verdict_colour, 11)
    pdf.ln(4)
    ctx = a["context"]
    rows = [["Date", a["generated"]], ["Target", a["target"]], ["Code version", a["code_version"]],
            ["Tests", ", ".join(f"{n} {k}" for k, n in sorted(a["summary"]["test_outcomes"].items()))],
            ["Findings", ", ".join(f"{n} {k}" for k, n in sorted(a["summary"]["finding_statuses"].items()))]]
    if ctx.get("signer_key_id"):
        rows.append(["Manifest signer", ctx["signer_key_id"]])
    for name, digest in sorted(ctx.get("artifact_hashes", {}).items()):
        rows.append([f"SHA-256 {name}", digest])
    pdf.grid(["Item", "Value"], rows, (40, 140), size=8)


def _executive(pdf: AssessmentPDF, a: dict) -> None:
    pdf.heading("Executive summary")
    pdf.para("Each finding was attacked three ways in this run: on the service as acquired (inherited), on "
             "the hardened service, and on the hardened service with only that finding's control switched "
             "off. A finding is verified fixed only when the attack succeeds on the first and third and fails "
             "on the second. Statuses below are this run's outcomes, not expectations.")
    rows = [[f["id"], f["title"], f"{f['severity']} {f['cvss_score']}", f["inherited"], f["status"]]
            for f in a["findings"]]
    pdf.grid(["ID", "Finding", "Severity (CVSS 3.1)", "Inherited", "Hardened"], rows, (16, 74, 28, 28, 34),
             size=8, colour_column=4)
    sentences = residual_sentences(a)
    if sentences:
        pdf.heading("Residual risk", level=1)
        pdf.para("What the controls do not stop, measured on the hardened service:")
        for sentence in sentences:
            pdf.para(f"• {sentence}")


def _scope(pdf: AssessmentPDF, a: dict) -> None:
    pdf.heading("Scope and method")
    ctx = a["context"]
    pdf.para(f"Target: {a['target']}. The model was trained in this run from the seed recipe "
             f"({json.dumps(ctx.get('provenance', {}).get('recipe', {}))}); its artifacts were signed and "
             "verified before the attacks. Attacks are plain functions over one client interface "
             "(predict(payload, headers)) and run unchanged against the Flask test client or a live URL. "
             "Evidence in this report is what each attack measured; nothing is copied from the original "
             "write-up, whose probing table and OWASP ids did not reproduce.")
    if a.get("assessed_black_box"):
        pdf.para("Mode: live target, black-box. Findings assessed black-box over HTTP: "
                 + ", ".join(a["assessed_black_box"]) + ".", style="B")
    for finding_id, reasons in sorted(a.get("check_by_hand", {}).items()):
        pdf.para(f"{finding_id} not assessed here; {'; '.join(reasons)}", size=8.5)
    metrics = ctx.get("model_metrics", {})
    if metrics:
        pdf.para("Model under assessment (held-out 20 %): " + ", ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(metrics.items())))
    pdf.para("The software versions are listed in the appendix.")
    for spec in ctx.get("charts", []):
        pdf.chart(render_chart(spec), spec["title"] + " — measured in this run", width=80)


def _threat_map(pdf: AssessmentPDF, a: dict) -> None:
    pdf.heading("Threat map")
    rows = [[r["stage"], r["threat"], r["owasp"], ", ".join(r["atlas"]), r["example"], r["control"],
             ", ".join(r["findings"]) or "—", r["status"]] for r in a["threat_map"]]
    pdf.grid(["Stage", "Threat", "OWASP", "ATLAS", "Example attack", "Control", "Findings", "Status"], rows,
             (22, 22, 12, 22, 28, 32, 16, 24), size=6.5, colour_column=7)
    pdf.heading("Tests covering each row", level=1)
    for row in a["threat_map"]:
        tests = ", ".join(_test_name(t) for t in row["tests"]) or "no test covers this row yet"
        pdf.para(f"{row['stage']}: {tests}", size=7)


def _finding(pdf: AssessmentPDF, f: dict) -> None:
    pdf.heading(f"{f['id']} — {f['title']}")
    pdf.coloured(f"{f['severity']} (CVSS {f['cvss_score']})  ·  status: {f['status']}",
                 Severity.from_label(f["severity"]).colour)
    rows = [["CVSS 3.1 vector", f["cvss_vector"]], ["Component", f["component"]], ["OWASP ML Top 10", f["owasp"]],
            ["MITRE ATLAS", ", ".join(f["atlas"])], ["Control", f["control"] or "—"],
            ["Inherited service", f["inherited"]], ["Hardened service", f["status"]]]
    if f["severity_note"] and f["severity"] != f["id_band"]:
        rows.append(["Severity note", f["severity_note"]])
    pdf.grid(["Field", "Value"], rows, (36, 144), size=8)
    pdf.label("Description", f["description"])
    pdf.label("Attack run", f["attack"])
    pdf.label("Risk", f["risk"])
    pdf.label("Evidence measured in this run", "")
    pdf.grid(["Test (variant)", "Outcome", "Status", "Measured"],
             [[t["variant"] or _test_name(t["nodeid"]), t["outcome"], t["status"], t["evidence"].get("summary", t["message"])]
              for t in f["tests"]], (34, 16, 24, 106), size=7.5, colour_column=2)
    ordered = sorted((t for t in f["tests"] if _shown(t)), key=lambda t: (t["judges_fix"], t["nodeid"]))
    _samples(pdf, ordered)
    drawn = set()
    for test in ordered:
        for spec in test["evidence"].get("charts", []):
            if spec["title"] in drawn:
                continue
            drawn.add(spec["title"])
            pdf.chart(render_chart(spec), f"{spec['title']} ({test['variant'] or 'measured'})")
    pdf.label("Remediation", f["remediation"])
    pdf.label("Tests", "\n".join(f"{t['nodeid']} — {t['outcome']} ({t['duration']:.2f} s)" for t in f["tests"]))


def _samples(pdf: AssessmentPDF, tests: list[dict]) -> None:
    """Each named sample once per variant: what was sent and what came back."""
    shown = set()
    for test in tests:
        for sample in test["evidence"].get("samples", []):
            if (test["variant"], sample["label"]) in shown:
                continue
            shown.add((test["variant"], sample["label"]))
            pdf.para(f"{sample['label']} ({test['variant'] or 'measured'}):", size=8, style="B")
            pdf.mono(_short({k: v for k, v in sample.items() if k != "label"}, 1000))


def _appendix(pdf: AssessmentPDF, a: dict) -> None:
    pdf.heading("Appendix: every test")
    pdf.grid(["Test", "Finding", "Outcome", "Seconds"],
             [[t["nodeid"], t["finding"] or "context", t["outcome"], f"{t['duration']:.2f}"] for t in a["tests"]],
             (128, 18, 18, 16), size=6.5)
    pdf.heading("Environment", level=1)
    pdf.grid(["Component", "Version"], [[k, str(v)] for k, v in sorted(a["environment"].items())], (60, 120))


def write_pdf(assessment: dict, path: Path) -> None:
    pdf = AssessmentPDF(assessment["title"])
    moment: datetime = report_time()
    pdf.set_creation_date(moment)
    pdf.set_title(assessment["title"])
    pdf.set_author("fraudpipe assessment")
    pdf.set_producer("fraudpipe")
    _cover(pdf, assessment)
    _executive(pdf, assessment)
    _scope(pdf, assessment)
    _threat_map(pdf, assessment)
    for finding in assessment["findings"]:
        _finding(pdf, finding)
    _appendix(pdf, assessment)
    tmp = path.with_suffix(".pdf.tmp")
    pdf.output(str(tmp))
    tmp.replace(path)
