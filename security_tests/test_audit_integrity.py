"""MED-2 across its whole family: one faithful record per request, whatever its status, from the real peer."""

import pytest

from fraudpipe.serving.audit import read_records
from security_tests.attacks.audit_integrity import audit_every_status
from security_tests.contract import expect_attack

LIMIT = 13  # above the document and the 11 requests of distinct statuses: the limiter counts every path
EVERY_STATUS = [200, 400, 401, 404, 405, 413, 415, 422, 429]


@pytest.mark.white_box("read the service's audit log: one faithful record per request, the peer as client")
@pytest.mark.finding("MED-2")
def test_every_request_of_every_status_leaves_one_faithful_record(variant, start_service, audit_path,
                                                                  assessor_key, evidence):
    client = start_service(variant, rate_limit=f"{LIMIT}/minute")
    document = client.get("/openapi.json").body

    def read_log():
        return read_records(audit_path), audit_path.read_text() if audit_path.exists() else ""

    found = evidence.record(audit_every_status(client, read_log, assessor_key, max_body_bytes=4096))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        declared = {int(code) for code in document["paths"]["/predict"]["post"]["responses"]}
        expected = set(EVERY_STATUS) & (declared | {404, 405})
        assert expected <= set(found.details["statuses_sent"]), "the campaign must reach every status the service declares"
