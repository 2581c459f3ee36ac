import logging

import pytest

from fraudpipe.serving.monitor_calibration import calibrate_and_measure_fpr
from security_tests.attacks.detection import detect_attack
from security_tests.attacks.disguised_probing import DISGUISES, RESIDUAL_DISGUISES, disguised_probing
from security_tests.attacks.evasion import fraud_rows, informed_evasion
from security_tests.attacks.extraction import random_flood
from security_tests.attacks.probing import probe_boundaries
from security_tests.contract import Evidence, expect_attack


class _AlertLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.alerts: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "monitor_alert"):
            self.alerts.append(record.monitor_alert)


def alerts_of(client):
    """The alert lines this in-process service has logged so far: the output an operator reads."""
    lines = _AlertLines()
    client.app.logger.addHandler(lines)
    return lambda: list(lines.alerts)


@pytest.mark.white_box("read the alerts in the service's audit log after a probing run")
@pytest.mark.finding("MED-5")
def test_boundary_probing_is_flagged_by_the_monitor(variant, start_service, evidence):
    client = start_service(variant, rate_limit="10000/minute")
    probing = evidence.record(detect_attack("bisection/sweep probing", lambda: probe_boundaries(client),
                                            alerts_of(client)))
    if not variant.attack_should_succeed:
        informed = start_service(variant, rate_limit="10000/minute")
        extractor = start_service(variant, rate_limit="10000/minute")
        others = [detect_attack("one-query evasion (hour 6)", lambda: informed_evasion(informed, fraud_rows()),
                                alerts_of(informed)),
                  detect_attack("random-query extraction (100)", lambda: random_flood(extractor, 100),
                                alerts_of(extractor))]
        benign = calibrate_and_measure_fpr()
        probing.details.update({"other_attacks": [o.as_dict() for o in others], "benign": benign})
        probing.measurements["benign_false_positive_rate"] = benign["false_positive_rate"]
        probing.residual = ("the monitor misses: " + ", ".join(o.summary for o in others if o.attack_succeeded)
                            + f"; false-positive rate on benign clients {benign['false_positive_rate']:.1%}")
        assert benign["false_positive_rate"] <= 0.05
    expect_attack(variant, probing)


@pytest.mark.white_box("read the monitor's alert lines after disguised probing runs")
@pytest.mark.finding("MED-5")
def test_noisy_and_decoy_interleaved_probing_is_flagged_by_the_monitor(variant, start_service, evidence):
    """A monitor that compared each query with the previous one only missed both disguises."""

    def run(name: str, disguise: dict):
        client = start_service(variant, rate_limit="10000/minute")
        return detect_attack(name, lambda: disguised_probing(client, **disguise), alerts_of(client))

    runs = [run(name, disguise) for name, disguise in DISGUISES.items()]
    missed = [r for r in runs if r.attack_succeeded]
    found = evidence.record(Evidence(
        attack_succeeded=bool(missed), queries=sum(r.queries for r in runs),
        summary="; ".join(r.summary for r in runs),
        details={"disguised_probing": [r.as_dict() for r in runs]}))
    if not variant.attack_should_succeed:
        residual = [run(name, disguise) for name, disguise in RESIDUAL_DISGUISES.items()]
        found.details["residual_disguises"] = [r.as_dict() for r in residual]
        found.residual = "the monitor misses: " + (
            "; ".join(r.summary for r in residual if r.attack_succeeded) or "none of the residual disguises tried")
    expect_attack(variant, found)
