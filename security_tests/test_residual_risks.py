"""Risks the controls do not remove. The hardened cases assert the fix and are strict xfails: green
today, red the day a change fixes the risk without the finding being updated."""

import pytest

from security_tests.attacks.evasion import evasion_campaign
from security_tests.attacks.extraction import extraction_curves
from security_tests.contract import expect_attack

LIMIT = 100


@pytest.mark.finding("HIGH-3")
def test_moving_the_hour_does_not_evade_detection(variant, start_service, evidence):
    found = evidence.record(evasion_campaign(start_service(variant, rate_limit=f"{LIMIT}/minute")))
    assert found.measurements["detected_before_attack"] == found.measurements["fraud_rows"]
    expect_attack(variant, found)


@pytest.mark.finding("HIGH-4")
def test_one_rate_limit_window_does_not_buy_a_faithful_copy(variant, start_service, holdout, evidence):
    X, victim_labels = holdout
    found = evidence.record(extraction_curves(start_service(variant, rate_limit=f"{LIMIT}/minute"), X, victim_labels,
                                              LIMIT))
    if not variant.attack_should_succeed:
        assert found.measurements["answered"] == LIMIT
    expect_attack(variant, found)


@pytest.mark.slow
@pytest.mark.white_box("HopSkipJump needs about 143 queries per transaction; run in-process, where the limit is raised "
                       "for the measurement")
@pytest.mark.finding("HIGH-3")
def test_hopskipjump_does_not_evade_detection(variant, start_service, audit_path, evidence):
    """An independent decision-based attack (ART). The hardened run raises the limit for this measurement
    only: at 100/minute the same attack takes under two minutes per transaction."""
    from fraudpipe.serving.audit import read_records
    from security_tests.attacks.detection import first_alerts
    from security_tests.attacks.evasion import fraud_rows, hopskipjump_campaign

    client = start_service(variant, rate_limit="100000/minute")
    found = evidence.record(hopskipjump_campaign(client, fraud_rows(10)))
    found.details.update({"monitor_alerts": first_alerts(read_records(audit_path)) if audit_path.exists() else {},
                          "rate_limit_for_this_measurement": "100000/minute"})
    expect_attack(variant, found)
