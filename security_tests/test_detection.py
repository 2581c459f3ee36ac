import pytest

from fraudpipe.serving.audit import read_records
from security_tests.attacks.detection import calibrate_and_measure_fpr, detect_attack
from security_tests.attacks.evasion import fraud_rows
from security_tests.attacks.extraction import flood, random_queries
from security_tests.attacks.probing import probe_boundaries
from security_tests.conftest import attack_should_succeed, expect_attack


@pytest.mark.white_box("read the alerts in the service's audit log after a probing run")
@pytest.mark.finding("MED-5")
def test_boundary_probing_is_flagged_by_the_monitor(variant, start_service, audit_path, evidence):
    def read_log():
        return read_records(audit_path)

    client = start_service(variant, rate_limit="10000/minute")
    probing = detect_attack(lambda: probe_boundaries(client), read_log)
    evidence.update({"probing": probing, "attack_succeeded": not probing["flagged"],
                     "summary": (f"bisection/sweep probing flagged by {sorted(probing['alerts'])} at query "
                                 f"{probing['first_flag_at_query']}" if probing["flagged"]
                                 else f"probing ({probing['queries_sent']} queries) raised no alert")})
    if not attack_should_succeed(variant):
        others = {}
        informed = start_service(variant, rate_limit="10000/minute")
        others["one-query evasion (hour 6)"] = detect_attack(
            lambda: {"sent": 20, "summary": f"{sum(informed.predict({**r, 'hour_of_day': 6}).label == 0 for r in fraud_rows())} "
                                            "of 20 evaded"}, read_log)
        extractor = start_service(variant, rate_limit="10000/minute")
        others["random-query extraction (100)"] = detect_attack(
            lambda: {"sent": 100, "summary": f"{len(flood(extractor, random_queries(100))['answered'])} answered"},
            read_log)
        benign = calibrate_and_measure_fpr()
        evidence.update({"other_attacks": others, "benign": benign,
                         "residual": "the monitor misses: " + ", ".join(
                             name for name, result in others.items() if not result["flagged"]) +
                         f"; false-positive rate on benign clients {benign['false_positive_rate']:.1%}"})
        assert benign["false_positive_rate"] <= 0.05
    expect_attack(variant, evidence)
