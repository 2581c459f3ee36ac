import pytest

from fraudpipe.serving.audit import read_records
from security_tests.attacks.forensics import probe_then_read_log
from security_tests.contract import expect_attack


@pytest.mark.white_box("read the service's audit log: one record per request, key id not key")
@pytest.mark.finding("MED-2")
def test_every_query_leaves_a_forensic_record(variant, start_service, audit_path, assessor_key, evidence):
    client = start_service(variant)

    def read_log():
        text = audit_path.read_text() if audit_path.exists() else ""
        return read_records(audit_path), text

    found = evidence.record(probe_then_read_log(client, read_log, assessor_key, n=500))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        record = found.details["last_record"]
        assert record["client"] and record["ts"].endswith("+00:00") and record["features"]
