"""The PDF a security engineer hands to management, rendered with fpdf2 from the assessment model.

Every number and every claim in it (the target, how many ways a finding was attacked, the test count)
comes from the ``Assessment``, which comes from this run; every page header names the target. Layout rules the tests check: a heading is
never left at the foot of a page, a finding starts on a new page only when less than half a page is
left, test ids appear only in the appendix, evidence reads as labelled values. With
``SOURCE_DATE_EPOCH`` set, identical results give byte-identical files.
"""

from __future__ import annotations

import io
import struct
from datetime import datetime
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from fpdf.fonts import FontFace

from security_tests.contract import FindingStatus
from security_tests.findings import ATLAS, OWASP_ML_2023
from security_tests.report import colours, plain
from security_tests.report.assessment import report_time
from security_tests.report.charts import render_chart
from security_tests.report.model import Assessment, FindingResult

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
MARGIN, BOTTOM = 16, 16
MAX_CELL = 60
"""Millimetres of text one table cell may hold: a row always fits on a page, and a reader sees the rows around it."""
KEEP_TOGETHER_ROWS = 30
"""A table of at most this many rows, and at most half a page tall, never starts at the foot of a page: no
page holds only the last few rows of the one before."""
MAX_PARAGRAPH = 20_000
"""Characters of one overflowing cell the PDF prints in full (findings.json has the rest)."""
HEADING_ROOM = 45
"""Millimetres a heading needs below it (itself and a few lines), so it never ends a page."""


class AssessmentPDF(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc_title = title
        self.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.add_font("DejaVu", "I", str(FONT_DIR / "DejaVuSans-Oblique.ttf"))
        self.add_font("DejaVuMono", "", str(FONT_DIR / "DejaVuSansMono.ttf"))
        self.set_auto_page_break(auto=True, margin=BOTTOM)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.alias_nb_pages()

    @property
    def room(self) -> float:
        return self.h - BOTTOM - self.get_y()

    def ensure(self, height: float) -> None:
        if self.room < height:
            self.add_page()

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

    def heading(self, text: str, level: int = 0, room: float = HEADING_ROOM) -> None:
        if level == 0:
            self.add_page()
        else:
            self.ensure(room)
            self.ln(2)
        self.start_section(text, level=level)
        size = {0: 16, 1: 13, 2: 10.5}[level]
        self.set_font("DejaVu", "B", size)
        self.multi_cell(0, size * 0.55, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)

    def para(self, text: str, size: float = 9.5, style: str = "") -> None:
        self.set_font("DejaVu", style, size)
        self.multi_cell(0, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.2)

    def label(self, name: str, text: str) -> None:
        self.ensure(18)
        self.set_font("DejaVu", "B", 9.5)
        self.cell(0, 5.5, name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if text:
            self.para(text)

    def box(self, text: str, colour: tuple[int, int, int], size: float = 9) -> None:
        """A shaded paragraph for what a reader must not miss (a severity note, a remaining risk)."""
        self.ensure(16)
        self.set_fill_color(*(255 - (255 - c) // 8 for c in colour))
        self.set_draw_color(*colour)
        self.set_font("DejaVu", "", size)
        self.multi_cell(0, size * 0.5, text, border="L", fill=True, align="L", padding=2,
                        new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(0, 0, 0)
        self.ln(2)

    def mono(self, text: str, size: float = 7.5) -> None:
        self.ensure(14)
        self.set_font("DejaVuMono", "", size)
        self.set_fill_color(244, 244, 244)
        self.multi_cell(0, size * 0.48, text, fill=True, align="L", padding=1.5,
                        new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)

    def coloured(self, text: str, colour: tuple[int, int, int], size: float = 9.5) -> None:
        self.set_text_color(*colour)
        self.para(text, size, "B")
        self.set_text_color(0, 0, 0)

    def fitted(self, header: list[str], rows: list[list[str]], widths: tuple, line_height: float
               ) -> tuple[list[list[str]], list[tuple[str, str]]]:
        """fpdf2 cannot split a table row across pages: a cell taller than ``MAX_CELL`` keeps the lines that fit
        and says so, and its whole text follows the table as paragraphs, which do split."""
        most = max(3, int(MAX_CELL / line_height))
        fitted, overflow = [], []
        for values in rows:
            kept = []
            for index, value in enumerate(values):
                value = str(value)
                if len(value) > 240 or value.count("\n") > 8:
                    lines = self.multi_cell(widths[index] - 2, line_height, value, dry_run=True,
                                            output=MethodReturnValue.LINES)
                    if len(lines) > most:
                        overflow.append((f"{header[index]} ({values[0]})" if index else header[index], value))
                        value = "\n".join(lines[:most - 1]) + "\n… (continued below the table)"
                kept.append(value)
            fitted.append(kept)
        return fitted, overflow

    def table_height(self, rows: list[list[str]], widths: tuple, line_height: float) -> float:
        """What a table will take, row by row (its tallest cell), so that a short one is kept on one page."""
        total = 0.0
        for values in rows:
            lines = max(len(self.multi_cell(widths[i] - 2, line_height, str(v), dry_run=True,
                                            output=MethodReturnValue.LINES)) for i, v in enumerate(values))
            total += lines * line_height + 2
        return total

    def grid(self, header: list[str], rows: list[list[str]], widths: tuple, size: float = 7.5,
             colour_column: int | None = None) -> None:
        self.set_font("DejaVu", "", size)
        rows, overflow = self.fitted(header, rows, widths, size * 0.5)
        height = self.table_height([header, *rows], widths, size * 0.5) if len(rows) <= KEEP_TOGETHER_ROWS else 0
        page = self.h - BOTTOM - MARGIN - 10
        self.ensure(height + 2 if height <= page / 2 else size * 0.5 * 2 + 12)
        with self.table(col_widths=widths, width=sum(widths), align="LEFT", text_align="LEFT",
                        line_height=size * 0.5, headings_style=FontFace(emphasis="BOLD", fill_color=(225, 230, 238)),
                        first_row_as_headings=True) as table:
            table.row(header)
            for values in rows:
                row = table.row()
                for index, value in enumerate(values):
                    colour = colours.BY_LABEL.get(value) if index == colour_column else None
                    row.cell(value, style=FontFace(color=colour, emphasis="BOLD") if colour else None)
        self.ln(2)
        for name, text in overflow:
            self.label(name, "")
            self.para(text if len(text) <= MAX_PARAGRAPH else
                      f"{text[:MAX_PARAGRAPH]}… [{len(text) - MAX_PARAGRAPH:,} more characters in findings.json]",
                      size=size)

    def chart(self, png: bytes, caption: str, width: float = 130) -> None:
        pixels_w, pixels_h = struct.unpack(">II", png[16:24])
        height = width * pixels_h / pixels_w
        self.ensure(height + 10)
        self.image(io.BytesIO(png), w=width, x=(self.w - width) / 2)
        self.set_font("DejaVu", "I", 7.5)
        self.multi_cell(0, 4, caption, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)


def severity_cell(f: FindingResult) -> str:
    item = f.finding
    text = f"{item.severity.label} {item.cvss_score}"
    return text if not f.severity_differs else f"{text} (id band {item.id_band.label}: see note)"


def severity_note(f: FindingResult) -> str:
    """Shown wherever the computed severity differs from the band in the id, with or without a reason."""
    item = f.finding
    reason = item.severity_note or "The catalog records no reason for the difference yet."
    return (f"Severity differs from the id: {item.id} carries the {item.id_band.label} band of the original "
            f"write-up; the CVSS 3.1 vector computes {item.severity.label} {item.cvss_score}. {reason}")


def _where(a: Assessment) -> str:
    return "on this target" if a.context.single_target else "on the hardened service"


def open_risks(a: Assessment) -> list[str]:
    """One sentence per finding with risk left on the hardened service, each from this run's numbers."""
    return [f"{f.id} {f.title} ({f.status.label}): {f.remaining_risk}" for f in a.findings if f.remaining_risk]


def method_sentence(a: Assessment) -> str:
    """How each finding was run, from the variants that actually ran."""
    ran = set(a.context.variants_run)
    if a.context.single_target:
        return (f"Each finding was attacked once, over HTTP, against the running service ({a.context.named}); "
                "a status says what was measured on this target, with no before and after to compare; checks "
                "that need the service's inside are listed as not assessed.")
    ways = [text for present, text in (
        ("inherited" in ran, "on the service as acquired (inherited)"),
        ("hardened" in ran, "on the hardened service"),
        (any(v.startswith("hardened-without-") for v in ran),
         "on the hardened service with only that finding's control switched off"))
        if present]
    count = {1: "one way", 2: "two ways", 3: "three ways"}[len(ways)] if ways else "no way"
    return (f"Each finding with a control was attacked {count} in this run: {', '.join(ways)}. A risk no control "
            "removes runs without the third. Statuses are this run's measurements, not expectations.")


def runs_sentence(a: Assessment) -> str:
    ran = a.context.variants_run
    isolated = sorted(v.removeprefix("hardened-without-") for v in ran if v.startswith("hardened-without-"))
    named = [name for variant, name in (("inherited", "as acquired (inherited)"), ("hardened", "hardened"),
                                        ("live", "live target")) if variant in ran]
    if isolated:
        named.append(f"hardened with one control off at a time ({', '.join(isolated)})")
    return "; ".join(named) or "none"


def _verdict_colour(a: Assessment) -> tuple[int, int, int]:
    if a.verdict.startswith("NOT"):
        return colours.STATUS[FindingStatus.OPEN]
    return colours.STATUS[FindingStatus.RESIDUAL_RISK if a.verdict.startswith("CONDITIONAL") else FindingStatus.FIXED]


def _cover(pdf: AssessmentPDF, a: Assessment) -> None:
    pdf.add_page()
    pdf.start_section("Cover", level=0)
    pdf.ln(18)
    pdf.set_font("DejaVu", "B", 24)
    pdf.multi_cell(0, 12, "Security assessment", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 13)
    pdf.multi_cell(0, 7, a.context.target_name, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    pdf.coloured(a.verdict, _verdict_colour(a), 11)
    pdf.ln(4)
    facts = a.context.facts
    rows = [["Date", a.generated], ["Target", a.context.named], ["Mode", a.context.mode],
            ["Code version", a.code_version], ["Test cases", a.count.sentence], ["Findings", a.findings_sentence]]
    if facts.get("signer_key_id"):
        rows.append(["Manifest signer", str(facts["signer_key_id"])])
    for name, digest in sorted(facts.get("artifact_hashes", {}).items()):
        rows.append([f"SHA-256 {name}", str(digest)])
    pdf.grid(["Item", "Value"], rows, (40, 138), size=8)


def _executive(pdf: AssessmentPDF, a: Assessment) -> None:
    pdf.heading("Executive summary")
    pdf.para(method_sentence(a))
    pdf.para(a.count.sentence + "; " + a.findings_sentence + ".", style="B")
    rows = [[f.id, f.title, severity_cell(f), f.status.label, plain.text(f.headline)] for f in a.findings]
    pdf.grid(["ID", "Finding", "Severity (CVSS 3.1)", "Status", f"Measured {_where(a)}"], rows,
             (15, 44, 25, 30, 64), size=7.5, colour_column=3)
    present = {f.status for f in a.findings}
    pdf.heading("What each status means", level=1, room=40)
    pdf.grid(["Status", "Meaning"], [[s.label, meaning] for s, meaning in a.legend if s in present],
             (50, 128), size=8, colour_column=0)
    risks = open_risks(a)
    if risks:
        pdf.heading(f"Risk that remains {_where(a)}", level=1, room=40)
        for sentence in risks:
            pdf.para(f"• {sentence}", size=9)
    accepted = [f for f in a.findings if f.accepted]
    if accepted:
        pdf.heading("Accepted risks", level=1, room=40)
        for f in accepted:
            pdf.para(f"• {f.id} {f.title}: {plain.accepted_text(f.accepted)}", size=9)
    if a.comparison is not None:
        header, changes = plain.comparison_table(a.comparison)
        pdf.heading("Changes since the last run", level=1, room=40)
        pdf.para(f"Compared with {a.comparison.previous} (generated {a.comparison.previous_generated or 'unknown'}, "
                 f"code {a.comparison.previous_code_version or 'unknown'}).", size=8.5)
        if changes:
            pdf.grid(header, changes, tuple([178 / len(header)] * len(header)), size=7.5)
        else:
            pdf.para("No finding changed status since the last run.", size=9)
    notes = [f for f in a.findings if f.severity_differs]
    if notes:
        pdf.heading("Where the computed severity differs from the id", level=1, room=40)
        pdf.para("An id keeps the band of the original write-up; the CVSS 3.1 vector computes the severity used "
                 "everywhere else in this report.", size=8.5)
        pdf.grid(["ID", "Id band", "Computed", "Why"],
                 [[f.id, f.finding.id_band.label, f"{f.finding.severity.label} {f.finding.cvss_score}",
                   f.finding.severity_note or "The catalog records no reason for the difference yet."] for f in notes],
                 (15, 18, 22, 123), size=7.5)


def _scope(pdf: AssessmentPDF, a: Assessment) -> None:
    pdf.heading("Scope and method")
    ctx = a.context
    pdf.para(f"Target: {ctx.named}. Mode: {ctx.mode}. Services attacked: {runs_sentence(a)}.")
    pdf.para(method_sentence(a))
    recipe = ctx.facts.get("provenance", {}).get("recipe")
    if recipe:
        pdf.para("The model's signed manifest records the recipe it was trained from: "
                 + plain.value(recipe) + ". Its artifacts were verified against the manifest before the attacks.")
    pdf.para("Attacks are plain functions over one client interface and run unchanged in-process or against a "
             "live URL. Evidence in this report is what each attack measured; nothing is copied from the "
             "original write-up.")
    shown = {"artifact_hashes", "signer_key_id", "provenance", "versions", "model_metrics",
             "confusion_matrix", "target", "budget_plan"}
    facts = [[plain.label(k), plain.value(v, k)] for k, v in sorted(ctx.facts.items()) if k not in shown]
    if facts:
        pdf.heading("Target facts recorded in this run", level=1, room=40)
        pdf.grid(["Fact", "Value"], facts, (50, 128), size=8)
    plan = ctx.facts.get("budget_plan")
    if isinstance(plan, dict) and isinstance(plan.get("tests"), dict):
        pdf.heading("Query budget", level=1, room=40)
        pdf.para(f"{plain.value(plan.get('keys'))} key(s) at {plain.value(plan.get('limit_per_window'))} per "
                 f"{plain.value(plan.get('window_seconds'))} s window; {plain.value(plan.get('windows_used'))} "
                 f"window(s) planned. Rule: {plain.text(str(plan.get('rule', '')))}.", size=8.5)
        pdf.grid(["Finding", "With the key", "Untouched windows", "Addresses without a key", "Not planned"],
                 budget_rows(plan["tests"]), (22, 28, 30, 36, 62), size=7.5)
    for finding_id, reasons in sorted(ctx.not_assessed.items()):
        pdf.para(f"{finding_id}: {'; '.join(plain.text(r) for r in reasons)}", size=8.5)
    metrics = ctx.facts.get("model_metrics", {})
    if metrics:
        pdf.heading("Model under assessment", level=1, room=70)
        pdf.grid(["Held-out metric", "Value"], plain.measurement_rows(metrics), (60, 60), size=8)
    for spec in ctx.charts:
        pdf.chart(render_chart(spec), spec["title"] + ", measured in this run", width=75)
    pdf.para("Software versions are listed in the appendix.", size=8.5)


def budget_rows(tests: dict) -> list[list[str]]:
    """The plan per finding, in counts a reader can check against the promised limit (the per-test plan,
    with its test names, stays in findings.json)."""
    rows: dict[str, list] = {}
    for name, allocation in sorted(tests.items()):
        if not isinstance(allocation, dict):
            continue
        row = rows.setdefault(str(name).split(" ")[0], [0, 0, 0, []])
        for piece in allocation.get("slices") or []:
            if isinstance(piece, dict):
                row[1 if piece.get("fresh") else 0] += int(piece.get("queries") or 0)
        row[2] += len(allocation.get("keyless_addresses") or [])
        if allocation.get("reason"):
            row[3].append(plain.text(str(allocation["reason"])).split(";")[0])
    return [[finding, f"{shared:,} queries", f"{fresh:,} queries", f"{keyless:,}", "; ".join(reasons) or "—"]
            for finding, (shared, fresh, keyless, reasons) in rows.items()]


def _threat_map(pdf: AssessmentPDF, a: Assessment) -> None:
    pdf.heading("Threat map")
    pdf.para("Each row's OWASP ML Top 10 (2023) and MITRE ATLAS ids are those of the findings on that stage, taken "
             "from the same catalog as the finding pages.", size=8.5)
    rows = [[r.stage, f"{r.threat}. Example: {r.example}", r.control,
             "\n".join(f"{o} {OWASP_ML_2023[o]}" for o in r.owasp),
             "\n".join(f"{t} {ATLAS[t]}" for t in r.atlas),
             "\n".join(f"{fid}: {a.by_id[fid].status.label}" for fid in r.findings) or "not covered"]
            for r in a.threat_map]
    pdf.grid(["Stage", "Threat", "Control", "OWASP ML 2023", "MITRE ATLAS", "Findings"], rows,
             (22, 36, 32, 26, 30, 32), size=6.8)


def _finding(pdf: AssessmentPDF, f: FindingResult) -> None:
    item = f.finding
    pdf.ensure((pdf.h - MARGIN - BOTTOM) * 0.45)
    if pdf.get_y() > MARGIN + 20:
        pdf.ln(3)
        pdf.line(MARGIN, pdf.get_y(), pdf.w - MARGIN, pdf.get_y())
        pdf.ln(2)
    pdf.heading(f"{f.id}: {f.title}", level=1)
    pdf.coloured(f"Status: {f.status.label}", colours.STATUS[f.status], 10)
    pdf.para(f.status_meaning[:1].upper() + f.status_meaning[1:] + ".", size=8.5, style="I")
    if f.severity_differs:
        pdf.box(severity_note(f), colours.SEVERITY[item.severity])
    if f.accepted:
        pdf.box(plain.accepted_text(f.accepted), colours.GREY)
    if f.status is FindingStatus.CONTROL_VERIFIED_RESIDUAL:
        pdf.box(f"Residual risk remains. {f.remaining_risk}.", colours.STATUS[FindingStatus.RESIDUAL_RISK])
    rows = [["Severity", f"{item.severity.label} {item.cvss_score} (CVSS 3.1 {item.cvss_vector})"],
            ["Component", item.component], ["OWASP ML Top 10 (2023)", item.owasp_name],
            ["MITRE ATLAS", ", ".join(f"{t} {ATLAS[t]}" for t in item.atlas)],
            ["Pipeline stage", ", ".join(item.stages)], ["Control", item.control or "none (no control removes it)"]]
    pdf.grid(["Field", "Value"], rows, (40, 138), size=8)
    pdf.label("Description", item.description)
    pdf.label("Attack run", f.attack_run)
    pdf.label("Risk", item.risk)
    _evidence(pdf, f)
    pdf.label("Remediation", item.remediation)


def _evidence(pdf: AssessmentPDF, f: FindingResult) -> None:
    pdf.heading("Evidence measured in this run", level=2, room=40)
    pdf.grid(["Run", "Result", "Measured"], plain.run_rows(f), (32, 34, 112), size=7.5)
    runs = plain.in_run_order([r for r in f.runs if r.evidence])
    names = sorted({k for r in runs for k in r.evidence.get("measurements", {})})
    if names and len(runs) <= 4:
        columns = [plain.run_name(r, f) for r in runs]
        rows = [[plain.label(n)] + [plain.value(r.evidence.get("measurements", {}).get(n), n) for r in runs]
                for n in names]
        width = 118 / len(runs)
        pdf.grid(["Measurement", *columns], rows, (178 - width * len(runs), *([width] * len(runs))), size=7.5)
    elif names:
        pdf.grid(["Run", "Measured values"], [[plain.run_name(r, f), plain.value(r.evidence.get("measurements", {}))]
                                             for r in runs], (50, 128), size=7.5)
    for run in [r for r in runs if r.judges_fix or r.variant is None]:
        details = plain.detail_rows(dict(run.evidence.get("details", {})))
        if details:
            pdf.grid([f"Detail ({plain.run_name(run, f)})", "Value"], details, (48, 130), size=7.5)
    shown = set()
    for run in sorted(runs, key=lambda r: (r.judges_fix, r.nodeid)):
        if run.control_isolation:
            continue
        for sample in run.evidence.get("samples", []):
            if (run.variant_id, sample["label"]) not in shown:
                shown.add((run.variant_id, sample["label"]))
                pdf.ensure(30)
                pdf.para(f"{sample['label']} ({plain.variant_name(run.variant)}):", size=8, style="B")
                pdf.mono(plain.sample_lines(sample))
    drawn = set()
    for run in runs:
        for spec in run.evidence.get("charts", []):
            if spec["title"] not in drawn:
                drawn.add(spec["title"])
                pdf.chart(render_chart(spec), f"{spec['title']} ({plain.variant_name(run.variant)})")


def _test_id(nodeid: str) -> str:
    """A test id split at safe points (file, then test name, then run), never mid-word."""
    path, _, name = nodeid.partition("::")
    base, _, params = name.partition("[")
    return f"{path}\n  {base}" + (f"\n  [{params}" if params else "")


def _appendix(pdf: AssessmentPDF, a: Assessment) -> None:
    pdf.heading("Appendix: environment and every test")
    pdf.grid(["Component", "Version"], [[k, str(v)] for k, v in sorted(a.environment.items())], (60, 118))
    pdf.heading("Every test", level=1, room=40)
    pdf.para(a.count.sentence + ".", style="B")
    pdf.grid(["Test", "Finding", "Result", "Seconds"],
             [[_test_id(r.nodeid), r.finding or ("context" if r.context else "property check"), r.result.words,
               f"{r.duration:.2f}"] for r in a.runs],
             (112, 18, 36, 12), size=6.5)


def write_pdf(assessment: Assessment, path: Path) -> None:
    pdf = AssessmentPDF(assessment.title)
    moment: datetime = report_time()
    pdf.set_creation_date(moment)
    pdf.set_title(assessment.title)
    pdf.set_author("security assessment")
    pdf.set_producer("security_tests report")
    _cover(pdf, assessment)
    _executive(pdf, assessment)
    _scope(pdf, assessment)
    _threat_map(pdf, assessment)
    pdf.heading("Findings")
    for finding in assessment.findings:
        _finding(pdf, finding)
    _appendix(pdf, assessment)
    tmp = path.with_suffix(".pdf.tmp")
    pdf.output(str(tmp))
    tmp.replace(path)
