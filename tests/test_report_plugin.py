"""The report plugin, tested by running real pytest sessions (serially and under xdist) with pytester."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.schemas import assert_valid_findings

REPO = Path(__file__).resolve().parents[1]
pytest_plugins = ["pytester"]

SUITE = '''
import os
import numpy as np
import pytest

from security_tests.contract import HARDENED, Evidence, expect_attack, variants
from security_tests.findings import finding

@pytest.mark.finding("CRIT-1")
@pytest.mark.parametrize("variant", variants(finding("CRIT-1")), ids=lambda v: v.id)
def test_door(variant, evidence):
    broken = os.environ.get("BREAK_CONTROL") == "1"
    succeeded = variant.attack_should_succeed or broken
    found = evidence.record(Evidence(
        attack_succeeded=succeeded, queries=10, summary=f"measured {7 if succeeded else 0} of 10 answered",
        measurements={"answered": np.int64(7 if succeeded else 0), "ratio": np.float64(0.25)},
        samples=[{"label": "A door request", "request": {"body": {"x": 1}}, "response": {"status": 200}}],
        charts=[{"kind": "line", "title": "door curve", "xlabel": "x", "ylabel": "y",
                 "series": {"s": [[1, 2, 3], [0.1, 0.5, None]]}}]))
    expect_attack(variant, found)

@pytest.mark.finding("MED-1")
@pytest.mark.parametrize("variant", [HARDENED], ids=lambda v: v.id)
@pytest.mark.xfail(strict=True, reason="residual")
def test_residual(variant, evidence):
    expect_attack(variant, evidence.record(Evidence(attack_succeeded=True, queries=13, summary="residual 13 queries")))
'''


@pytest.fixture
def suite(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makeconftest('pytest_plugins = ["security_tests.report.plugin"]\n')
    pytester.makeini("[pytest]\nmarkers =\n    finding(id): x\n")
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def _read(pytester):
    data = json.loads((pytester.path / "artifacts" / "findings.json").read_text())
    assert_valid_findings(data)
    text = "\n".join(page.extract_text() for page in PdfReader(pytester.path / "artifacts" / "security-assessment.pdf").pages)
    return {f["id"]: f for f in data["findings"]}, text, data


@pytest.mark.parametrize("args", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_findings_statuses_and_evidence_reach_json_and_pdf(suite, args):
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)
    result.assert_outcomes(passed=3, xfailed=1)
    findings, text, data = _read(suite)
    assert findings["CRIT-1"]["status"] == "Verified fixed" and findings["CRIT-1"]["inherited"] == "Reproduced"
    assert findings["CRIT-1"]["status_code"] == "fixed"
    assert findings["MED-1"]["status"] == "OPEN (residual risk)" and findings["MED-1"]["status_code"] == "residual_open"
    assert data["summary"]["tests_sentence"] == "4 assessment test cases: 3 passed, 1 expected failure (open residual risk)"
    answered = {t["variant"]: t["evidence"]["measurements"]["answered"] for t in findings["CRIT-1"]["tests"]}
    assert answered == {"inherited": 7, "hardened": 0, "hardened-without-auth": 7}
    assert [t["nodeid"] for t in data["tests"]] == sorted(t["nodeid"] for t in data["tests"])
    for needle in ("CRIT-1", "Verified fixed", "measured 7 of 10 answered", "OPEN (residual risk)", "A door request",
                   "4 assessment test cases",
                   "Threat map", "Appendix", "Executive summary"):
        assert needle in text, needle


def test_a_failing_hardened_case_shows_open_and_keeps_the_exit_status(suite, monkeypatch):
    monkeypatch.setenv("BREAK_CONTROL", "1")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 1
    result.assert_outcomes(passed=2, failed=1, xfailed=1)
    findings, text, data = _read(suite)
    assert findings["CRIT-1"]["status"] == "OPEN"
    assert data["verdict"].startswith("NOT READY")
    assert "OPEN" in text and "NOT READY" in text


def test_html_page_has_finding_columns_and_evidence_extras(suite):
    suite.runpytest_subprocess("-p", "no:cacheprovider", "--html=report.html", "--self-contained-html")
    html = (suite.path / "report.html").read_text()
    assert "col-finding" in html and "CRIT-1" in html and "hardened-without-auth" in html
    assert "fp-findings" in html and "image/png" in html and "data:application/json" not in html
    assert '<h1 id="title">Security assessment of fraudpipe fraud-detection service</h1>' in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: the rendered page cannot be checked")
def test_a_browser_shows_every_finding_with_its_status_above_the_runs(suite, tmp_path):
    suite.runpytest_subprocess("-p", "no:cacheprovider", "--html=report.html", "--self-contained-html")
    data = json.loads((suite.path / "artifacts" / "findings.json").read_text())
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                          (suite.path / "report.html").as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    summary = dom[dom.index('class="fp-findings"'):dom.index("</table>", dom.index('class="fp-findings"'))]
    for finding in data["findings"]:
        row = re.search(rf'data-finding="{finding["id"]}" data-status-code="{finding["status_code"]}">(.*?)</tr>',
                        summary, re.S)
        assert row and f'>{finding["status"]}</td>' in row.group(1), finding["id"]
    assert dom.index('class="fp-findings"') < dom.index('id="results-table"')
    assert dom.index('class="fp-verdict"') < dom.index('id="environment"'), "the page must open on the verdict"
    folded = dom[dom.index('id="fp-environment"'):]
    assert folded.index('id="environment"') < folded.index("</details>"), "the environment table is folded"
    assert "attack succeeded (expected)" in dom and "attack succeeded (open residual risk)" in dom
    assert "Traceback" not in dom and "AssertionError" not in dom
    assert 'href="data:' not in dom


def test_pdf_is_byte_identical_for_identical_results(tmp_path, monkeypatch):
    from security_tests.report.assessment import build_assessment
    from security_tests.report.pdf import write_pdf
    from security_tests.contract import HARDENED, Evidence
    from security_tests.report.records import TestRow

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    rows = [TestRow("t::a[CRIT-1[hardened]]", "passed", 0.5, "CRIT-1", HARDENED,
                    Evidence(attack_succeeded=False, summary="0 of 10", queries=10).as_dict())]
    write_pdf(build_assessment(rows), tmp_path / "a.pdf")
    write_pdf(build_assessment(rows), tmp_path / "b.pdf")
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


NOT_ASSESSED_SUITE = '''
import pytest

from security_tests.contract import HARDENED, LIVE, BudgetSpent, Evidence, Inconclusive, NotAssessed

@pytest.mark.finding("HIGH-4")
@pytest.mark.parametrize("variant", [HARDENED], ids=lambda v: v.id)
@pytest.mark.xfail(strict=True, reason="residual")
def test_inconclusive_residual(variant, evidence):
    raise Inconclusive("all 100 queries answered one label")

@pytest.mark.finding("HIGH-1")
@pytest.mark.parametrize("variant", [LIVE], ids=lambda v: v.id)
def test_budget_via_measure(variant, evidence):
    try:
        raise BudgetSpent("not assessed (budget): HIGH-1 needs a whole window")
    except NotAssessed as exc:
        pytest.skip(str(exc))

@pytest.mark.finding("CRIT-1")
@pytest.mark.parametrize("variant", [LIVE], ids=lambda v: v.id)
@pytest.mark.white_box("reads the audit log")
@pytest.mark.skip(reason="not assessed (needs the inside), check by hand: reads the audit log")
def test_inside(variant, evidence):
    pass

@pytest.mark.finding("CRIT-1")
@pytest.mark.parametrize("variant", [LIVE], ids=lambda v: v.id)
def test_blocked(variant, evidence):
    evidence.record(Evidence(attack_succeeded=False, queries=3, summary="0 of 3 answered"))
'''


def test_not_assessed_anywhere_in_a_test_is_a_typed_skip_and_never_a_red_xpass(suite):
    suite.makepyfile(test_suite=NOT_ASSESSED_SUITE)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--no-assessment-pdf")
    result.assert_outcomes(passed=1, skipped=3)
    assert result.ret == 0
    findings, data = None, json.loads((suite.path / "artifacts" / "findings.json").read_text())
    assert_valid_findings(data)
    findings = {f["id"]: f for f in data["findings"]}
    kinds = {t["nodeid"].split("::")[-1]: t["not_assessed"] for t in data["tests"]}
    assert kinds["test_inconclusive_residual[hardened]"] == {"kind": "inconclusive",
                                                            "reason": "all 100 queries answered one label"}
    assert kinds["test_budget_via_measure[live]"]["kind"] == "budget"
    assert kinds["test_inside[live]"] == {"kind": "needs_inside", "reason": "reads the audit log"}
    assert findings["HIGH-4"]["status"] == "Not assessed"
    assert findings["HIGH-4"]["measured"] == "not assessed (inconclusive): all 100 queries answered one label"
    assert findings["CRIT-1"]["status"] == "Held" and findings["CRIT-1"]["measured"] == "0 of 3 answered"
    assert data["single_target"] is True
