"""The report speaks the target assessed: a live run against a service that is not fraudpipe (the test loan
scorer's profile) renders an HTML page, a PDF, findings.json, SARIF and a summary with no word about fraud,
transactions or hours, the target's name on every PDF page header, and "Held", never "Verified fixed"."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from pypdf import PdfReader

from security_tests.contract import LIVE, Evidence, NotAssessed
from security_tests.findings import FINDINGS
from security_tests.report.assessment import build_assessment
from security_tests.report.html import evidence_html, findings_summary
from security_tests.report.pdf import write_pdf
from security_tests.report import records
from security_tests.report.records import NotAssessedNote
from security_tests.report.sarif import build_sarif
from security_tests.report.summary import render_summary
from security_tests.targets.profile import fraudpipe_target, load_profile
from tests.schemas import assert_valid_findings, assert_valid_sarif

LOAN = load_profile("tests/targets/loan_service.toml")
FOREIGN = re.compile(r"fraud|transaction|\bhours?\b", re.IGNORECASE)


def _rows(profile) -> list[records.TestRow]:
    """One live row per finding, as a run against ``profile`` gives them: black-box findings measured
    (blocked or open), the rest not assessed because they need the inside."""
    context = records.TestRow("security_tests/test_target.py::test_target", "passed", 0.1, context=True, evidence=Evidence(
        attack_succeeded=False, queries=1, summary=f"{profile.name}: /health 200",
        details={"target": f"{profile.name} at http://127.0.0.1:8000 (black-box over HTTP)",
                 "target_name": profile.name, "mode": "black-box over HTTP", "fields": list(profile.field_names),
                 "positive_label": profile.positive}).as_dict())
    rows = [context]
    for item in FINDINGS:
        nodeid = f"security_tests/test_{item.id.lower().replace('-', '_')}.py::test_attack[{item.id}[live]]"
        if not item.black_box_attack:
            rows.append(records.TestRow(nodeid, "skipped", 0.0, item.id, LIVE, message="needs the inside",
                                not_assessed=NotAssessedNote("needs_inside", "reads the service's own files")))
            continue
        succeeded = item.id in ("CRIT-1", "HIGH-1")
        outcome = "xfailed" if item.residual else ("failed" if succeeded else "passed")
        rows.append(records.TestRow(nodeid, outcome, 0.3, item.id, LIVE, Evidence(
            attack_succeeded=succeeded or item.residual, queries=12, summary=f"{12 if succeeded else 0} of 12 answered",
            measurements={"answered": 12 if succeeded else 0},
            samples=[{"label": "A request", "request": {"headers": {profile.auth_header: "<absent>"},
                                                         "body": profile.positive_example},
                      "response": {"status": 200, "body": {"result": {"decision": profile.positive}}}}]).as_dict()))
    return rows


@pytest.fixture(scope="module")
def loan_outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("loan")
    model = build_assessment(_rows(LOAN), LOAN)
    write_pdf(model, out / "a.pdf")
    pages = [page.extract_text() for page in PdfReader(out / "a.pdf").pages]
    html = findings_summary(model) + "".join(evidence_html(run.evidence, run.variant, run.result)
                                             for run in model.runs)
    findings = model.as_json()
    sarif = build_sarif(model)
    return model, {"pdf": "\n".join(pages), "html": html, "findings.json": json.dumps(findings),
                   "sarif": json.dumps(sarif), "summary": render_summary(model)}, pages, findings, sarif


def test_no_output_of_a_loan_scorer_run_talks_about_fraud_transactions_or_hours(loan_outputs):
    assert not FOREIGN.search(json.dumps([LOAN.name, LOAN.field_names, str(LOAN.positive)]))
    _, outputs, _, findings, sarif = loan_outputs
    assert_valid_findings(findings)
    assert_valid_sarif(sarif)
    for name, text in outputs.items():
        found = sorted({m.group(0) for m in FOREIGN.finditer(text)})
        assert not found, (name, found, [text[max(0, m.start() - 60):m.end() + 60] for m in FOREIGN.finditer(text)][:3])


def test_every_output_names_the_target_and_every_pdf_page_header_does(loan_outputs):
    model, outputs, pages, findings, sarif = loan_outputs
    assert model.title == f"Security assessment of {LOAN.name}"
    for name, text in outputs.items():
        assert LOAN.name in text, name
    for number, page in enumerate(pages[1:], start=2):
        assert model.title in re.sub(r"\s+", " ", page), f"page {number} header"
    assert findings["target_name"] == LOAN.name and findings["single_target"] is True
    assert sarif["runs"][0]["properties"]["target"] == LOAN.name


def test_a_single_target_never_says_verified_fixed_and_each_status_sits_beside_its_own_runs(loan_outputs):
    model, outputs, _, findings, _ = loan_outputs
    for text in outputs.values():
        assert "Verified fixed" not in text and "verified fixed" not in text
    statuses = {f["id"]: f for f in findings["findings"]}
    assert statuses["CRIT-1"]["status"] == "OPEN" and statuses["MED-1"]["status_code"] == "held"
    assert statuses["CRIT-2"]["status"] == "Control verified, residual risk remains"
    assert statuses["HIGH-2"]["status"] == "Not assessed"
    assert statuses["HIGH-2"]["measured"] == "not assessed (needs the inside): reads the service's own files"
    for finding in model.findings:
        deciding = [run.summary for run in finding.runs if run.nodeid in finding.deciding]
        assert deciding and finding.measured.startswith(deciding[0]), finding.id


def test_the_catalog_speaks_the_profile_and_keeps_fraudpipes_own_words_for_fraudpipe():
    crit2, high3 = next(f for f in FINDINGS if f.id == "CRIT-2"), next(f for f in FINDINGS if f.id == "HIGH-3")
    assert crit2.worded(LOAN).title == "Model score exposed in the API response"
    assert high3.worded(LOAN).title == "Label-only evasion: small input changes flip the DENY decision"
    assert crit2.worded(fraudpipe_target()).title == "Fraud probability exposed in the API response"
    assert high3.worded(fraudpipe_target()).title == "Label-only evasion: moving the hour defeats the model"
    assert "/v2/score" in next(f for f in FINDINGS if f.id == "HIGH-1").worded(LOAN).title
    assert "Authorization header with the Bearer scheme" in FINDINGS[0].worded(LOAN).remediation
    not_own = replace(fraudpipe_target(), own_service=False)
    for item in FINDINGS:
        worded = item.worded(LOAN).as_dict()
        assert not FOREIGN.search(json.dumps(worded)), item.id
        assert "{" not in worded["title"], item.id
        assert item.worded(not_own).title == item.worded(LOAN).title.replace("DENY", "FRAUD").replace(
            "/v2/score", "/predict"), item.id


def test_target_supplied_text_is_escaped_for_each_format(tmp_path):
    hostile = replace(LOAN, name="<script>x</script> | *loan* _scorer_", positive="<b>DENY</b>")
    model = build_assessment(_rows(hostile), hostile)
    assert "<script>x" not in findings_summary(model) and "&lt;script&gt;x" in findings_summary(model)
    summary = render_summary(model)
    assert "<script>x" not in summary and "\\|" in summary.splitlines()[0]
    write_pdf(model, tmp_path / "a.pdf")
    assert "<script>x</script>" in PdfReader(tmp_path / "a.pdf").pages[0].extract_text()


def test_not_assessed_is_typed_from_the_exception():
    assert NotAssessed.kind == "precondition"
    assert NotAssessedNote("budget", "not assessed (budget): 3 queries left").text == \
        "not assessed (budget): 3 queries left"
    assert NotAssessedNote("precondition", "the target did not answer").text == \
        "not assessed (precondition not met): the target did not answer"


def test_runs_that_measured_nothing_for_one_reason_share_one_evidence_row():
    from security_tests.report import plain

    inside = NotAssessedNote("needs_inside", "needs the model folder")
    rows = [records.TestRow(f"t::tamper[HIGH-2[live]-case {i}]", "skipped", 0.0, "HIGH-2", LIVE, not_assessed=inside)
            for i in range(3)]
    rows.append(records.TestRow("t::other[HIGH-2[live]]", "passed", 0.1, "HIGH-2", LIVE,
                                Evidence(attack_succeeded=False, summary="refused", queries=1).as_dict()))
    table = plain.run_rows(build_assessment(rows, LOAN).by_id["HIGH-2"])
    assert table == [["Live target: other", "attack blocked", "refused"],
                     ["Live target (3 cases)", "not assessed", "not assessed (needs the inside): needs the model folder"]]
