import logging

import pytest

from security_tests.attacks.detection import calibrate_and_measure_fpr, detect_attack
from security_tests.attacks.disguised_probing import DISGUISES, RESIDUAL_DISGUISES, disguised_probing
from security_tests.attacks.evasion import fraud_rows
from security_tests.attacks.extraction import flood, random_queries
from security_tests.attacks.probing import probe_boundaries
from security_tests.conftest import attack_should_succeed, expect_attack


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
    probing = detect_attack(lambda: probe_boundaries(client), alerts_of(client))
    evidence.update({"probing": probing, "attack_succeeded": not probing["flagged"],
                     "summary": (f"bisection/sweep probing flagged by {sorted(probing['alerts'])} at query "
                                 f"{probing['first_flag_at_query']}" if probing["flagged"]
                                 else f"probing ({probing['queries_sent']} queries) raised no alert")})
    if not attack_should_succeed(variant):
        others = {}
        informed = start_service(variant, rate_limit="10000/minute")
        others["one-query evasion (hour 6)"] = detect_attack(
            lambda: {"sent": 20, "summary": f"{sum(informed.predict({**r, 'hour_of_day': 6}).label == 0 for r in fraud_rows())} "
                                            "of 20 evaded"}, alerts_of(informed))
        extractor = start_service(variant, rate_limit="10000/minute")
        others["random-query extraction (100)"] = detect_attack(
            lambda: {"sent": 100, "summary": f"{len(flood(extractor, random_queries(100))['answered'])} answered"},
            alerts_of(extractor))
        benign = calibrate_and_measure_fpr()
        evidence.update({"other_attacks": others, "benign": benign,
                         "residual": "the monitor misses: " + ", ".join(
                             name for name, result in others.items() if not result["flagged"]) +
                         f"; false-positive rate on benign clients {benign['false_positive_rate']:.1%}"})
        assert benign["false_positive_rate"] <= 0.05
    expect_attack(variant, evidence)


@pytest.mark.white_box("read the monitor's alert lines after disguised probing runs")
@pytest.mark.finding("MED-5")
def test_noisy_and_decoy_interleaved_probing_is_flagged_by_the_monitor(variant, start_service, evidence):
    """A monitor that compared each query with the previous one only missed both disguises."""

    def run(disguise: dict) -> dict:
        client = start_service(variant, rate_limit="10000/minute")
        return detect_attack(lambda: disguised_probing(client, **disguise), alerts_of(client))

    runs = {name: run(disguise) for name, disguise in DISGUISES.items()}
    missed = [name for name, result in runs.items() if not result["flagged"]]
    evidence.update({"disguised_probing": runs, "attack_succeeded": bool(missed),
                     "summary": "; ".join(f"{name}: " + (f"flagged at query {r['first_flag_at_query']} of "
                                                         f"{r['queries_sent']}" if r["flagged"] else
                                                         f"no alert in {r['queries_sent']} queries")
                                          for name, r in runs.items())})
    if not attack_should_succeed(variant):
        residual = {name: run(disguise) for name, disguise in RESIDUAL_DISGUISES.items()}
        evidence.update({"residual_disguises": residual, "residual": "the monitor misses: " + (", ".join(
            f"{name} ({r['attack_summary']})"
            for name, r in residual.items() if not r["flagged"]) or "none of the residual disguises tried")})
    expect_attack(variant, evidence)
