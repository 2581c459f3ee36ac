"""The report never contradicts itself: one status model, one OWASP/ATLAS mapping, one test count, and a
PDF laid out so a reviewer can read it (checked on the rendered pages, not on the code that drew them)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from security_tests.contract import HARDENED, INHERITED, Evidence, FindingStatus, hardened_without, variants
from security_tests.findings import ATLAS, BY_ID, FINDINGS, OWASP_ML_2023, threat_map
from security_tests.report import plain
from security_tests.report.assessment import build_assessment
from security_tests.report.pdf import write_pdf
from security_tests.report import records
from security_tests.report.model import Acceptance, Comparison, FindingChange
from security_tests.report.status import judge, lift
from security_tests.targets.profile import fraudpipe_target

FRAUDPIPE = fraudpipe_target()

REPR_SUMMARY = "moves: {'hour_of_day': 2, 'amount': 10}, flagged by ['probing'], outside: True, mode 0o600"


def _evidence(succeeded: bool, residual: str = "") -> dict:
    return Evidence(attack_succeeded=succeeded, summary=REPR_SUMMARY, queries=12, residual=residual,
                    samples=[{"label": "A request and its response",
                              "request": {"headers": {"X-API-Key": "<present, 32 chars>"}, "body": {"amount": 800.0}},
                              "response": {"status": 200, "body": {"prediction": 1}}}],
                    measurements={"answered": 100, "fidelity_with_all_answers": 1.0, "ok": True},
                    details={"statuses": {"200": 100, "429": 400}, "other_attacks": [
                        {"summary": "random-query extraction (100) raised no alert", "attack_succeeded": True}]},
                    charts=[{"kind": "line", "title": "A rate", "xlabel": "x", "ylabel": "rate",
                             "series": {"s": [[1, 2], [1.0, 1.0]]}}]).as_dict()


def _rows() -> list[records.TestRow]:
    rows = []
    for item in FINDINGS:
        for variant in variants(item):
            judged = variant.judges_fix
            outcome = "xfailed" if item.residual and judged else "passed"
            succeeded = variant.attack_should_succeed or (item.residual and judged)
            rows.append(records.TestRow(f"security_tests/test_{item.id.lower().replace('-', '_')}.py::test_attack"
                                f"[{item.id}[{variant.id}]]", outcome, 0.1, item.id, variant,
                                _evidence(succeeded, "a measured risk remains" if item.id == "MED-5" and judged else "")))
    rows.append(records.TestRow("security_tests/test_hardened_properties.py::test_no_5xx[hardened]", "passed", 0.2,
                        None, HARDENED, {}))
    return rows


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    model = build_assessment(_rows())
    write_pdf(model, out / "a.pdf")
    pages = [page.extract_text() for page in PdfReader(out / "a.pdf").pages]
    return model.as_json(), pages, out / "a.pdf"


def test_the_status_model_has_stable_codes_and_lifts_a_verified_control_with_remaining_risk():
    assert [s.code for s in FindingStatus] == [
        "open", "error", "residual_open", "control_verified_residual_remains", "fixed", "held", "not_assessed",
        "not_run", "not_reproduced"]
    assert (FindingStatus.OPEN.label, FindingStatus.RESIDUAL_RISK.label, FindingStatus.FIXED.label,
            FindingStatus.NOT_ASSESSED.label) == ("OPEN", "OPEN (residual risk)", "Verified fixed", "Not assessed")

    def row(variant, outcome, succeeded, residual=""):
        return records.TestRow("t", outcome, finding="X", variant=variant, evidence=_evidence(succeeded, residual))

    control = [row(INHERITED, "passed", True), row(HARDENED, "passed", False),
               row(hardened_without("rate_limit"), "passed", True)]
    assert judge(control, False).status is FindingStatus.FIXED
    residual_in = {"HIGH-1": ("HIGH-4",)}
    assert lift({"HIGH-1": FindingStatus.FIXED}, residual_in)["HIGH-1"] is FindingStatus.FIXED
    assert lift({"HIGH-1": FindingStatus.FIXED, "HIGH-4": FindingStatus.RESIDUAL_RISK},
                residual_in)["HIGH-1"] is FindingStatus.CONTROL_VERIFIED_RESIDUAL
    assert judge([*control[:1], row(HARDENED, "passed", False, "misses")], False).status \
        is FindingStatus.CONTROL_VERIFIED_RESIDUAL
    assert judge([*control[1:], row(INHERITED, "failed", False)], False).status is FindingStatus.ERROR


def test_findings_whose_control_leaves_risk_point_at_where_it_remains(rendered):
    assessment, pages, _ = rendered
    findings = {f["id"]: f for f in assessment["findings"]}
    assert findings["HIGH-1"]["status_code"] == "control_verified_residual_remains"
    assert findings["HIGH-1"]["residual_in"] == ["HIGH-4"] and findings["HIGH-4"]["status_code"] == "residual_open"
    assert findings["MED-5"]["status_code"] == "control_verified_residual_remains"
    assert findings["MED-5"]["residual_evidence"] == ["a measured risk remains"]
    text = "\n".join(pages)
    assert "See HIGH-4 (OPEN (residual risk))" in re.sub(r"\s+", " ", text)


def test_the_threat_map_is_derived_from_the_catalog_and_every_page_agrees(rendered):
    assessment, pages, _ = rendered
    rows = {r["stage"]: r for r in threat_map()}
    for item in FINDINGS:
        for stage in item.stages:
            assert item.owasp in rows[stage]["owasp"] and set(item.atlas) <= set(rows[stage]["atlas"]), (item.id, stage)
    for row in rows.values():
        on_stage = [f for f in FINDINGS if row["stage"] in f.stages]
        assert set(row["owasp"]) == {f.owasp for f in on_stage}
    flat = [re.sub(r"\s+", " ", page) for page in pages]
    for item in FINDINGS:
        page = next(p for p in flat if f"{item.id}: {item.worded(FRAUDPIPE).title}" in p)
        assert f"OWASP ML Top 10 (2023) {item.owasp} {OWASP_ML_2023[item.owasp]}" in page, item.id
        assert all(f"{t} {ATLAS[t]}" in page for t in item.atlas), item.id


def test_one_test_count_everywhere(rendered):
    assessment, pages, _ = rendered
    text = re.sub(r"\s+", " ", "\n".join(pages))
    counts = set(re.findall(r"(\d+) assessment test cases", text))
    assert counts == {str(len(assessment["tests"]))} == {str(assessment["summary"]["tests"])}
    assert f"{len(assessment['tests'])} assessment test cases: " in assessment["summary"]["tests_sentence"]


def test_no_python_reprs_and_test_ids_only_in_the_appendix(rendered):
    _, pages, _ = rendered
    appendix = next(i for i, page in enumerate(pages) if "Appendix: environment and every test" in page)
    for page in pages:
        assert not re.search(r"\{'|\['|(?<![=\w])(True|False|None)\b|0o\d", page), page[:200]
    for page in pages[:appendix]:
        assert "security_tests/" not in page and "::test_" not in page
    assert "X-API-Key: <present, 32 chars>" in "\n".join(pages)
    assert "Fidelity with all answers 100.0%" in re.sub(r"\s+", " ", "\n".join(pages))


def test_a_computed_severity_off_its_id_band_is_explained_on_the_page(rendered):
    _, pages, _ = rendered
    flat = [re.sub(r"\s+", " ", page) for page in pages]
    for item in FINDINGS:
        if item.severity is not item.id_band:
            page = next(p for p in flat if f"{item.id}: {item.worded(FRAUDPIPE).title}" in p)
            assert f"Severity differs from the id: {item.id} carries the {item.id_band.label} band" in page


def _headings(reader: PdfReader) -> list[list[tuple[str, float]]]:
    """Per page, (text, height from the bottom) of every run set at heading size (10.5 pt and up)."""
    pages = []
    for page in reader.pages:
        found: list[tuple[str, float]] = []

        def visit(text, cm, tm, font, size, found=found):
            if text.strip() and size * (tm[0] or 1) >= 10.5:
                found.append((text.strip(), tm[5] * cm[3] + cm[5]))

        page.extract_text(visitor_text=visit)
        pages.append(found)
    return pages


def _fill(pdf: Path, tmp_path: Path) -> list[float]:
    """How far down each rendered page the content reaches (0 to 1 of the space between header and footer)."""
    subprocess.run(["pdftoppm", "-r", "20", "-gray", str(pdf), str(tmp_path / "p")], check=True)
    fills = []
    for image in sorted(tmp_path.glob("p-*.pgm")):
        data = image.read_bytes()
        _, width, height, _, pixels = data.split(maxsplit=4)
        width, height = int(width), int(height)
        top, bottom = int(height * 24 / 297), int(height * (297 - 16) / 297)
        inked = [y for y in range(top, bottom) if min(pixels[y * width:(y + 1) * width]) < 200]
        fills.append(((max(inked) - top) / (bottom - top)) if inked else 0.0)
    return fills


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")
def test_pdf_layout_keeps_headings_with_text_and_fills_its_pages(rendered, tmp_path):
    _, pages, pdf = rendered
    reader = PdfReader(pdf)
    height = float(reader.pages[0].mediabox.height)
    headings = _headings(reader)
    for number, found in enumerate(headings[1:], start=2):
        for text, y in found:
            assert y > height * 0.15, f"heading {text!r} in the bottom 15 % of page {number}"
    section_starts = {i for i, found in enumerate(headings) if any(y > height * 0.85 for _, y in found)
                      and any(t in ("Executive summary", "Scope and method", "Threat map", "Findings",
                                    "Appendix: environment and every test") for t, _ in found)}
    fills = _fill(pdf, tmp_path)
    for index, fill in enumerate(fills[:-1]):
        if index + 1 not in section_starts and index > 0:
            assert fill >= 0.4, f"page {index + 1} is only {fill:.0%} full"
        if index > 0 and not headings[index]:
            assert fill >= 0.4, f"page {index + 1} holds only the last {fill:.0%} of the page before it"


def test_the_verdict_names_what_it_is_conditional_on(rendered):
    assessment, _, _ = rendered
    assert assessment["verdict"].startswith("CONDITIONAL on accepting HIGH-3 and HIGH-4"), assessment["verdict"]


def test_evidence_reads_as_words():
    assert plain.text(REPR_SUMMARY) == ("moves: Amount: 10; Hour of day: 2, flagged by probing, outside: yes, "
                                        "mode 0600")
    assert plain.value(0.25, "false_positive_rate") == "25.0%" and plain.value(1234) == "1,234"
    assert plain.sample_lines({"label": "x", "request": {"headers": {}, "body": {"a": 1}},
                               "response": {"status": 401}}).splitlines()[:2] == ["Request", "  (no credential, no other header)"]
    assert BY_ID["HIGH-1"].residual_in == ("HIGH-4",)


def test_accepted_risks_and_changes_since_the_last_run_are_shown_when_present(tmp_path):
    from security_tests.report.html import findings_summary

    assessment = build_assessment(_rows())
    assessment.by_id["HIGH-3"].accepted = Acceptance("HIGH-3", "risk-team@example.com", "model retrain scheduled",
                                                     "2027-01-31", "active")
    assessment.comparison = Comparison("old.json", None, "abc123", {"changed": 1}, (FindingChange(
        "HIGH-1", "changed", "Verified fixed", "Control verified, residual risk remains"),), ())
    write_pdf(assessment, tmp_path / "a.pdf")
    text = re.sub(r"\s+", " ", "\n".join(page.extract_text() for page in PdfReader(tmp_path / "a.pdf").pages))
    html = findings_summary(assessment)
    for shown in (text, html):
        assert "Accepted risk: owner risk-team@example.com, expires 2027-01-31" in shown
        assert "Changes since" in shown and "HIGH-1" in shown


RENDERERS = ("pdf", "html", "sarif", "summary", "gate", "ci", "plain", "compare")


def test_renderers_read_the_model_and_never_decide_a_status_from_outcomes():
    """Only report/status.py turns outcomes into statuses; a renderer that read ``outcome`` or compared a
    pytest outcome word would be a second interpretation."""
    root = Path(__file__).resolve().parents[1] / "security_tests" / "report"
    for name in RENDERERS:
        tree = ast.parse((root / f"{name}.py").read_text())
        words = {"passed", "failed", "xfailed", "xpassed", "skipped", "error"}
        outcomes = [node.lineno for node in ast.walk(tree)
                    if (isinstance(node, ast.Attribute) and node.attr == "outcome")
                    or (isinstance(node, ast.Compare) and any(isinstance(c, ast.Constant) and c.value in words
                                                               for c in ast.walk(node)))]
        assert not outcomes, (name, outcomes)
