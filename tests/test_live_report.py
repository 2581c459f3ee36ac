"""How live rows read in findings.json: nothing measured is never open, a blocked attack on a single target
is "Held" (never "Verified fixed"), and a residual risk that does not reproduce on someone else's target is
said so, without claiming every control was verified."""

from security_tests.contract import LIVE, FindingStatus, RunResult
from security_tests.report.assessment import build_assessment
from security_tests.report import records
from security_tests.targets.profile import load_profile
from tests.schemas import assert_valid_findings

LOAN = load_profile("tests/targets/loan_service.toml")


def _row(finding: str, outcome: str, succeeded: bool | None, message: str = "", name: str = "",
         **extra) -> records.TestRow:
    evidence = {} if succeeded is None else {"attack_succeeded": succeeded, "summary": f"m {finding}{name}",
                                             "residual": ""}
    return records.TestRow(f"t::{finding}{name}", outcome=outcome, finding=finding, variant=LIVE, evidence=evidence,
                           message=message, **extra)


def test_live_rows_give_held_not_assessed_and_not_reproduced_and_an_honest_verdict():
    context = records.TestRow("t::ctx", outcome="passed", context=True, evidence={"details": {
        "target_name": "loan scorer", "mode": "black-box over HTTP", "trained_in_this_run": False}})
    rows = [context, _row("CRIT-1", "passed", False),
            _row("HIGH-1", "skipped", None, "not assessed (budget): HIGH-1 needs a whole window"),
            _row("HIGH-3", "xfailed", True),
            _row("HIGH-4", "failed", False, "[XPASS(strict)] HIGH-4 open residual risk", strict_xpass=True)]
    assert rows[4].result is RunResult.NOT_REPRODUCED and rows[2].result is RunResult.NOT_ASSESSED
    model = build_assessment(rows, LOAN)
    assessment = model.as_json()
    assert_valid_findings(assessment)
    statuses = {f["id"]: f["status"] for f in assessment["findings"]}
    assert statuses == {"CRIT-1": "Held", "HIGH-1": "Not assessed", "HIGH-3": "OPEN (residual risk)",
                        "HIGH-4": "Not reproduced"}
    assert model.by_id["CRIT-1"].status_meaning == "the attack was blocked on this target"
    verdict = assessment["verdict"]
    assert verdict.startswith("CONDITIONAL") and LOAN.name in verdict and "every control" not in verdict
    assert "HIGH-4" in verdict and "HIGH-1" in verdict
    context = assessment["context"]
    assert context["not_assessed"]["HIGH-1"] == ["not assessed (budget): HIGH-1 needs a whole window"]
    assert context["variants_run"] == ["live"] and context["mode"] == "black-box over HTTP"


def test_a_strict_xpass_is_recognised_from_the_typed_record_not_the_message():
    assert _row("HIGH-4", "failed", False, "[XPASS(strict)] looks like one").result is RunResult.UNEXPECTED
    assert _row("HIGH-4", "failed", False, "", strict_xpass=True).result is RunResult.NOT_REPRODUCED


def test_a_failed_live_row_whose_attack_succeeded_is_open():
    assert _row("CRIT-2", "failed", True).result is RunResult.SUCCEEDED
    model = build_assessment([_row("CRIT-2", "failed", True)], LOAN)
    assert model.by_id["CRIT-2"].status is FindingStatus.OPEN
    assert model.by_id["CRIT-2"].status_meaning == "the attack succeeded on this target"


def test_a_status_and_its_measured_text_come_from_the_same_runs():
    """The issue's CRIT-1 row read "Verified fixed" beside "not assessed (needs the inside)"."""
    inside = records.NotAssessedNote("needs_inside", "reads the audit log")
    rows = [_row("CRIT-1", "passed", False, name="a"), _row("CRIT-1", "skipped", None, name="b", not_assessed=inside)]
    finding = build_assessment(rows, LOAN).by_id["CRIT-1"]
    assert finding.status is FindingStatus.HELD and finding.measured == "m CRIT-1a"
    assert finding.deciding == ("t::CRIT-1a",)
    only_skipped = build_assessment(rows[1:], LOAN).by_id["CRIT-1"]
    assert only_skipped.status is FindingStatus.NOT_ASSESSED
    assert only_skipped.measured == "not assessed (needs the inside): reads the audit log"


def test_an_inconclusive_residual_risk_reads_not_assessed_inconclusive_with_what_was_tried():
    note = records.NotAssessedNote("inconclusive", "all 100 queries answered APPROVE")
    finding = build_assessment([_row("HIGH-4", "skipped", None, not_assessed=note)], LOAN).by_id["HIGH-4"]
    assert finding.status is FindingStatus.NOT_ASSESSED
    assert finding.measured == "not assessed (inconclusive): all 100 queries answered APPROVE"
