"""The CI options, tested on real pytest sessions: a small synthetic suite through pytester for each output,
and the real assessment (a -k selection) for the gate's exit status."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from security_tests.findings import BY_ID, FINDINGS
from tests.schemas import assert_valid_findings, assert_valid_sarif

REPO = Path(__file__).resolve().parents[1]
pytest_plugins = ["pytester"]

SUITE = '''
import os
import pytest

from security_tests.contract import HARDENED, Evidence, expect_attack, variants
from security_tests.findings import finding

@pytest.mark.finding("CRIT-1")
@pytest.mark.parametrize("variant", variants(finding("CRIT-1")), ids=lambda v: v.id)
def test_auth(variant, evidence):
    blocked = variant.judges_fix and os.environ.get("BREAK_AUTH") != "1"
    found = evidence.record(Evidence(
        attack_succeeded=not blocked, queries=10, summary=f"{0 if blocked else 10} of 10 answered",
        measurements={"answered": 0 if blocked else 10, "seconds": float(os.environ.get("SECONDS_TAKEN", "0.1"))}))
    expect_attack(variant, found)

@pytest.mark.finding("HIGH-4")
@pytest.mark.parametrize("variant", [HARDENED], ids=lambda v: v.id)
@pytest.mark.xfail(strict=True, reason="residual")
def test_extraction(variant, evidence):
    fidelity = float(os.environ.get("FIDELITY", "1.0"))
    expect_attack(variant, evidence.record(Evidence(attack_succeeded=True, queries=100,
                  summary=f"surrogate fidelity {fidelity}", measurements={"fidelity": fidelity})))
'''

FUTURE = '[[accept]]\nid = "{id}"\nowner = "risk-owner@example.com"\nreason = "compensating quota"\nexpires = 2999-12-31\n'
PAST = FUTURE.replace("2999-12-31", "2000-01-01")


@pytest.fixture
def ci_suite(pytester, monkeypatch):
    for name, value in {"PYTHONPATH": str(REPO), "SOURCE_DATE_EPOCH": "1800000000"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makepyfile(conftest='pytest_plugins = ["security_tests.report.plugin"]\n', test_ci=SUITE)
    pytester.makeini("[pytest]\nmarkers =\n    finding(id): the finding\n")
    return pytester


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-assessment-pdf", *args)


def findings_json(pytester) -> dict:
    data = json.loads((pytester.path / "artifacts" / "findings.json").read_text())
    assert_valid_findings(data)
    return data


@pytest.mark.parametrize(("threshold", "status", "args"), [("medium", 6, []), ("medium", 6, ["-n", "2"]),
                                                     ("high", 0, []), (None, 0, [])])
def test_gate_exits_6_only_for_an_open_finding_at_or_above_the_computed_severity(ci_suite, threshold, status, args):
    result = run(ci_suite, *(["--fail-on", threshold] if threshold else []), *args)
    result.assert_outcomes(passed=3, xfailed=1)
    assert result.ret == status
    if status:
        result.stdout.fnmatch_lines(["*gate --fail-on medium: FAIL HIGH-4 Medium 6.5 OPEN (residual risk)*"])
        assert "FAIL CRIT-1" not in result.stdout.str()
    assert findings_json(ci_suite).get("gate", {}).get("threshold") == threshold


def test_a_failing_test_keeps_pytest_status_1_and_the_gate_still_names_the_finding(ci_suite, monkeypatch):
    monkeypatch.setenv("BREAK_AUTH", "1")
    result = run(ci_suite, "--fail-on", "low")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAIL CRIT-1 High 8.2 OPEN*"])


def test_an_unexpired_acceptance_passes_the_gate_and_shows_in_every_output(ci_suite):
    ci_suite.path.joinpath("risks.toml").write_text(FUTURE.format(id="HIGH-4"))
    result = run(ci_suite, "--fail-on", "medium", "--accepted-risks", "risks.toml", "--sarif", "out.sarif",
                 "--summary", "summary.md", "--html", "report.html", "--self-contained-html")
    assert result.ret == 0
    note = "accepted by risk-owner@example.com until 2999-12-31: compensating quota"
    result.stdout.fnmatch_lines([f"HIGH-4: {note}", "*gate --fail-on medium: passed"])
    finding = {f["id"]: f for f in findings_json(ci_suite)["findings"]}["HIGH-4"]
    assert finding["accepted"]["state"] == "active" and finding["status"] == "OPEN (residual risk)"
    sarif = json.loads((ci_suite.path / "out.sarif").read_text())
    assert_valid_sarif(sarif)
    assert sarif["runs"][0]["results"][0]["suppressions"] == [{
        "kind": "external", "status": "accepted",
        "justification": "compensating quota (owner risk-owner@example.com, until 2999-12-31)"}]
    assert note in (ci_suite.path / "summary.md").read_text()
    assert note in (ci_suite.path / "report.html").read_text()


def test_an_expired_acceptance_fails_the_gate_and_says_expired(ci_suite):
    ci_suite.path.joinpath("risks.toml").write_text(PAST.format(id="HIGH-4"))
    result = run(ci_suite, "--fail-on", "high", "--accepted-risks", "risks.toml")
    assert result.ret == 6
    result.stdout.fnmatch_lines(["*FAIL HIGH-4: accepted risk expired on 2000-01-01*"])
    assert findings_json(ci_suite)["accepted_risks"]["entries"][0]["state"] == "expired"


def test_an_acceptance_of_a_finding_no_longer_open_is_reported_stale(ci_suite):
    ci_suite.path.joinpath("risks.toml").write_text(FUTURE.format(id="CRIT-1"))
    result = run(ci_suite, "--fail-on", "high", "--accepted-risks", "risks.toml")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["CRIT-1: accepted (stale: no longer open) by risk-owner@example.com*"])


@pytest.mark.parametrize(("text", "message"), [
    (FUTURE.format(id="HIGH-4").replace('owner = "risk-owner@example.com"\n', ""), "entry 1: missing owner"),
    (FUTURE.format(id="HIGH-4").replace("2999-12-31", '"next week"'), "entry 1: expires 'next week' is not a date"),
    (FUTURE.format(id="HIGH-99"), "entry 1: unknown finding id 'HIGH-99'"),
    (FUTURE.format(id="HIGH-4") * 2, "entry 2: HIGH-4 is accepted twice"),
    ("[[accept]\n", "Expected ']]'"),
], ids=["missing-field", "bad-date", "unknown-id", "duplicate", "not-toml"])
def test_a_malformed_accepted_risks_file_stops_the_run_with_one_usage_line(ci_suite, text, message):
    ci_suite.path.joinpath("risks.toml").write_text(text)
    result = run(ci_suite, "--accepted-risks", "risks.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and "--accepted-risks risks.toml" in errors[0] and message in errors[0], errors
    assert not (ci_suite.path / "artifacts" / "findings.json").exists()


def _catalog_line(finding_id: str) -> int:
    lines = (REPO / "security_tests" / "findings.py").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if f'id="{finding_id}"' in line)


def test_sarif_is_valid_one_rule_per_finding_and_fingerprints_ignore_measurements(ci_suite, monkeypatch):
    sarifs = []
    for fidelity in ("1.0", "0.25"):
        monkeypatch.setenv("FIDELITY", fidelity)
        run(ci_suite, "--sarif", f"sarif/{fidelity}.sarif")
        sarifs.append(json.loads((ci_suite.path / "sarif" / f"{fidelity}.sarif").read_text()))
    for sarif in sarifs:
        assert_valid_sarif(sarif)
    run_ = sarifs[0]["runs"][0]
    rules = {rule["id"]: rule for rule in run_["tool"]["driver"]["rules"]}
    assert list(rules) == [f.id for f in FINDINGS]
    rule = rules["HIGH-4"]
    assert rule["properties"]["security-severity"] == "6.5" and rule["shortDescription"]["text"] == BY_ID["HIGH-4"].title
    assert {"CWE-799", "external/cwe/cwe-799", "ML05", "AML.T0024.002"} <= set(rule["properties"]["tags"])
    assert "Remediation: Per-key daily quotas" in rule["help"]["text"]
    assert [r["ruleId"] for r in run_["results"]] == ["HIGH-4"]
    first, second = (s["runs"][0]["results"][0] for s in sarifs)
    assert first["level"] == "warning" and first["kind"] == "fail"
    assert first["message"]["text"] == "OPEN (residual risk): surrogate fidelity 1.0"
    assert second["message"]["text"].endswith("fidelity 0.25")
    assert first["partialFingerprints"] == second["partialFingerprints"]
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "security_tests/findings.py"
    assert location["region"]["startLine"] == _catalog_line("HIGH-4")


def test_compare_to_names_regressions_fixes_and_moved_measurements(ci_suite, monkeypatch):
    run(ci_suite)
    (ci_suite.path / "old.json").write_text((ci_suite.path / "artifacts" / "findings.json").read_text())
    for name, value in {"BREAK_AUTH": "1", "FIDELITY": "0.5", "SECONDS_TAKEN": "9"}.items():
        monkeypatch.setenv(name, value)
    result = run(ci_suite, "--compare-to", "old.json", "--summary", "summary.md", "--html", "r.html",
                 "--self-contained-html")
    result.stdout.fnmatch_lines(["compared with old.json: 0 new, 0 fixed, 1 regressed, 1 unchanged; "
                                 "2 measurement(s) changed",
                                 "  CRIT-1: regressed (Verified fixed -> OPEN)"])
    comparison = findings_json(ci_suite)["comparison"]
    moved = {(m["finding"], m["measure"]): (m["old"], m["new"]) for m in comparison["measurements"]}
    assert moved == {("CRIT-1", "answered"): (0, 10), ("HIGH-4", "fidelity"): (1.0, 0.5)}
    assert "Compared with the previous run" in (ci_suite.path / "summary.md").read_text()
    assert "Comparison:</strong> compared with old.json" in (ci_suite.path / "r.html").read_text()
    (ci_suite.path / "old.json").write_text((ci_suite.path / "artifacts" / "findings.json").read_text())
    monkeypatch.delenv("BREAK_AUTH")
    run(ci_suite, "--compare-to", "old.json").stdout.fnmatch_lines(["  CRIT-1: fixed (OPEN -> Verified fixed)"])


def test_compare_to_a_file_that_is_not_findings_json_is_a_usage_error(ci_suite):
    ci_suite.path.joinpath("old.json").write_text("[1, 2]")
    result = run(ci_suite, "--compare-to", "old.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --compare-to old.json: not a findings.json*"])


def test_summary_defaults_to_appending_to_github_step_summary(ci_suite, monkeypatch):
    step_summary = ci_suite.path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    run(ci_suite, "--fail-on", "medium")
    text = step_summary.read_text()
    assert text.startswith("earlier step\n# Security assessment of fraudpipe fraud-detection service")
    assert "**Gate (`--fail-on medium`):** FAILED" in text
    assert "| HIGH-4 | Label-only model extraction fits inside the rate limit | Medium 6.5 | OPEN (residual risk) |" in text


@pytest.mark.parametrize("args", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_junit_cases_carry_finding_severity_and_status(ci_suite, args):
    run(ci_suite, "--junitxml", "junit.xml", *args)
    xml = (ci_suite.path / "junit.xml").read_text()
    cases = re.findall(r'<testcase [^>]*name="([^"]+)".*?</testcase>', xml, re.S)
    assert len(cases) == 4
    properties = dict(re.findall(r'name="(test_extraction\[hardened\])".*?name="status" value="([^"]+)"', xml, re.S))
    assert properties == {"test_extraction[hardened]": "OPEN (residual risk)"}
    for name, value in [("finding", "CRIT-1"), ("severity", "High"), ("cvss_score", "8.2"), ("status", "Blocked")]:
        assert f'<property name="{name}" value="{value}"' in xml
    assert xml.count('name="status"') == 4


SELECTION = "(HIGH-3 or HIGH-4 or CRIT-1) and not hopskipjump"


@pytest.mark.parametrize(("risks", "status", "needles"), [
    (None, 6, ["FAIL HIGH-3 Medium 6.5 OPEN (residual risk)", "FAIL HIGH-4 Medium 6.5 OPEN (residual risk)"]),
    (FUTURE.format(id="HIGH-3") + FUTURE.format(id="HIGH-4"), 0, ["gate --fail-on medium: passed"]),
    (PAST.format(id="HIGH-3") + FUTURE.format(id="HIGH-4"), 6, ["FAIL HIGH-3: accepted risk expired on 2000-01-01"]),
], ids=["unaccepted", "accepted", "expired"])
def test_the_real_assessment_gate_on_the_residual_risks(tmp_path, risks, status, needles):
    args = [sys.executable, "-m", "pytest", "security_tests", "-k", SELECTION, "-o", "addopts=", "-p", "no:cacheprovider",
            "--assessment-dir", str(tmp_path), "--no-assessment-pdf", "--fail-on", "medium"]
    if risks:
        (tmp_path / "risks.toml").write_text(risks)
        args += ["--accepted-risks", str(tmp_path / "risks.toml")]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "GITHUB_STEP_SUMMARY": ""})
    assert result.returncode == status, result.stdout[-3000:]
    for needle in needles:
        assert needle in result.stdout
    data = json.loads((tmp_path / "findings.json").read_text())
    assert_valid_findings(data)
    statuses = {f["id"]: f["status"] for f in data["findings"]}
    assert statuses == {"CRIT-1": "Verified fixed", "HIGH-3": "OPEN (residual risk)", "HIGH-4": "OPEN (residual risk)"}
