"""How live rows read in findings.json: nothing measured is never open, and a residual risk that does
not reproduce on someone else's target is said so, without claiming every control was verified."""

from security_tests.contract import LIVE, Status
from security_tests.report.assessment import build_assessment
from security_tests.report import records


def _row(finding: str, outcome: str, succeeded: bool | None, message: str = "") -> records.TestRow:
    evidence = {} if succeeded is None else {"attack_succeeded": succeeded, "summary": "m", "residual": ""}
    return records.TestRow(f"t::{finding}", outcome=outcome, finding=finding, variant=LIVE, evidence=evidence,
                   message=message)


def test_live_rows_give_not_assessed_and_not_reproduced_and_an_honest_verdict():
    context = records.TestRow("t::ctx", outcome="passed", context=True, evidence={"details": {
        "target_name": "loan scorer", "mode": "black-box over HTTP", "trained_in_this_run": False}})
    rows = [context, _row("CRIT-1", "passed", False),
            _row("HIGH-1", "skipped", None, "not assessed (budget): HIGH-1 needs a whole window"),
            _row("HIGH-3", "xfailed", True),
            _row("HIGH-4", "failed", False, "[XPASS(strict)] HIGH-4 open residual risk")]
    assert rows[4].status is Status.NOT_REPRODUCED and rows[2].status is Status.NOT_ASSESSED
    assessment = build_assessment(rows)
    statuses = {f["id"]: f["status"] for f in assessment["findings"]}
    assert statuses == {"CRIT-1": "Verified fixed", "HIGH-1": "Not assessed", "HIGH-3": "OPEN (residual risk)",
                        "HIGH-4": "Not reproduced"}
    verdict = assessment["verdict"]
    assert verdict.startswith("CONDITIONAL") and "loan scorer" in verdict and "every control" not in verdict
    assert "HIGH-4" in verdict and "HIGH-1" in verdict
    context = assessment["context"]
    assert context["not_assessed"]["HIGH-1"] == ["not assessed (budget): HIGH-1 needs a whole window"]
    assert context["variants_run"] == ["live"] and context["mode"] == "black-box over HTTP"


def test_a_failed_live_row_whose_attack_succeeded_is_open():
    assert _row("CRIT-2", "failed", True).status is Status.OPEN
