"""The assessment's contract: variants, evidence counts, and the order of statuses and severities."""

import ast
from pathlib import Path

import pytest

from security_tests.attacks.client import Answer
from security_tests.attacks.score_exposure import probe_boundaries
from security_tests.contract import (HARDENED, INHERITED, LIVE, Evidence, FindingStatus, RunResult, Severity, Variant,
                                     variants)
from security_tests.findings import FINDINGS, finding
from security_tests.report import records
from security_tests.report.status import judge
from security_tests.targets.profile import fraudpipe_target

ROOT = Path(__file__).resolve().parents[1]


def test_a_control_finding_runs_three_ways_and_only_the_hardened_way_must_block():
    runs = variants(finding("CRIT-1"))
    assert [v.id for v in runs] == ["inherited", "hardened", "hardened-without-auth"]
    assert [v.attack_should_succeed for v in runs] == [True, False, True]
    assert runs[2].service_off == {"auth"} and runs[2].is_control_isolation


def test_break_control_switches_the_control_off_in_the_hardened_run_only():
    hardened = variants(finding("MED-3"), broken="data_gate")[1]
    assert hardened.id == "hardened" and hardened.training_off == {"data_gate"} and not hardened.service_off
    assert not hardened.control_on("data_gate") and not hardened.attack_should_succeed


def test_residual_and_live_findings_have_no_isolation_run():
    assert variants(finding("HIGH-3")) == [INHERITED, HARDENED]
    assert variants(finding("CRIT-1"), live=True) == [LIVE] and LIVE.id == "live" and LIVE.judges_fix


def test_an_unknown_control_is_refused():
    with pytest.raises(ValueError, match="unknown control"):
        variants(finding("CRIT-1"), broken="firewall")


def test_a_variant_survives_the_trip_to_the_report():
    for item in FINDINGS:
        for variant in variants(item):
            assert Variant.from_dict(variant.as_dict()) == variant


def test_a_finding_takes_its_worst_hardened_status():
    def row(variant, outcome, name="t"):
        return records.TestRow(name, outcome, finding="X", variant=variant,
                               evidence=Evidence(attack_succeeded=False, summary=name, queries=1).as_dict())
    judged = judge([row(HARDENED, "passed", "a"), row(HARDENED, "failed", "b"), row(INHERITED, "failed")], False)
    assert judged.status is FindingStatus.OPEN and [r.nodeid for r in judged.deciding] == ["b"]
    assert judge([row(HARDENED, "passed"), row(HARDENED, "xfailed")], False).status is FindingStatus.RESIDUAL_RISK
    assert sorted([FindingStatus.FIXED, FindingStatus.ERROR, FindingStatus.OPEN]) == [
        FindingStatus.OPEN, FindingStatus.ERROR, FindingStatus.FIXED]


def test_a_finding_status_and_a_run_result_are_separate_types_without_colours():
    assert not set(FindingStatus.__members__) >= {"REPRODUCED", "CONTROL_ISOLATED"}
    assert {"REPRODUCED", "CONTROL_ISOLATED", "BLOCKED"} <= set(RunResult.__members__)
    assert not any(hasattr(member, "colour") for enum in (FindingStatus, RunResult, Severity) for member in enum)


def test_the_contract_and_the_catalog_do_not_import_each_other():
    imported = {node.module for node in ast.walk(ast.parse((ROOT / "security_tests" / "contract.py").read_text()))
                if isinstance(node, ast.ImportFrom)}
    assert "security_tests.findings" not in imported


def test_severities_are_ordered_and_the_catalog_uses_them():
    assert sorted(Severity, reverse=True)[-1] is Severity.CRITICAL and Severity.CRITICAL < Severity.NONE
    item = finding("CRIT-1")
    assert item.id_band is Severity.CRITICAL and isinstance(item.severity, Severity)
    assert item.worded(fraudpipe_target()).as_dict()["severity"] == item.severity.label
    assert all(f.severity.floor <= f.cvss_score for f in FINDINGS)


class _CountingClient:
    """Answers FRAUD at night-time hours, counting every request."""

    target = "fake"

    def __init__(self) -> None:
        self.sent = 0

    def predict(self, payload=None, headers=None, **_):
        self.sent += 1
        label = int(payload["hour_of_day"] < 6)
        return Answer(200, {"prediction": label, "label": ["LEGITIMATE", "FRAUD"][label]}, {})


def test_probing_counts_every_request_it_sends():
    client = _CountingClient()
    found = probe_boundaries(client, fraudpipe_target())
    assert found.queries == client.sent
    assert found.details["flip_points"]["hour_of_day"] == [5, 6]


def test_no_attack_reaches_into_the_service_and_no_test_imports_a_conftest():
    for path in (ROOT / "security_tests").rglob("*.py"):
        imported = [node.module or "" for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.ImportFrom)]
        assert not any(m.endswith("conftest") for m in imported), path
        if "attacks" in path.parts:
            assert not any(m.startswith("fraudpipe.serving") for m in imported), path
