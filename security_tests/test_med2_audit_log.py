"""MED-2 — no inference query logging: every request, whatever its status, must leave one faithful audit
record (the peer address as client, the key's id and never the key, what was sent and answered), at the
configured path whatever happens to the file (rotated, deleted, a full disk: then no answer), readable by the
service alone. Reads the service's log, so it runs in-process only (inherited, hardened, hardened without
``audit_log``)."""

from pathlib import Path

import pytest

from fraudpipe.serving.audit import read_records
from security_tests.attacks.audit_log import (audit_every_status, log_in_operation, probe_then_read_log,
                                              target_audit_trail)
from security_tests.contract import expect_attack, grey_box_part
from security_tests.faults import full_disk
from security_tests.markers import runs
from security_tests.misconfiguration import as_deployed, deploy
from security_tests.targets.profile import fraudpipe_target

PROFILE = fraudpipe_target()

LIMIT = 13  # above the document and the 11 requests of distinct statuses: the limiter counts every path
EVERY_STATUS = [200, 400, 401, 404, 405, 413, 415, 422, 429]


def _reader(audit_path):
    def read_log():
        return read_records(audit_path), audit_path.read_text() if audit_path.exists() else ""
    return read_log


@pytest.mark.white_box("read the service's audit log: one record per request, key id not key")
@pytest.mark.finding("MED-2")
@runs(probe_then_read_log)
def test_every_query_leaves_a_forensic_record(variant, target, audit_path, evidence):
    reach = target()
    found = evidence.record(probe_then_read_log(reach.client(), _reader(audit_path), reach.profile, reach.key, n=500))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        record = found.details["last_record"]
        assert record["client"] and record["ts"].endswith("+00:00") and record["features"]


@pytest.mark.white_box("read the service's audit log: one faithful record per request, the peer as client")
@pytest.mark.finding("MED-2")
@runs(audit_every_status)
def test_every_request_of_every_status_leaves_one_faithful_record(variant, target, audit_path, evidence):
    reach = target(rate_limit=f"{LIMIT}/minute")
    client, profile = reach.client(), reach.profile
    document = client.get(profile.openapi_path).body
    found = evidence.record(audit_every_status(client, _reader(audit_path), profile, reach.key, max_body_bytes=4096))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        declared = {int(code) for code in document["paths"][profile.predict_path]["post"]["responses"]}
        expected = set(EVERY_STATUS) & (declared | {404, 405})
        assert expected <= set(found.details["statuses_sent"]), "the campaign must reach every status the service declares"


@pytest.mark.white_box("renames, deletes and fills the disk under the service's audit log")
@pytest.mark.finding("MED-2")
@runs(log_in_operation)
def test_every_answer_is_recorded_where_the_log_is_read_whatever_happens_to_the_file(variant, target, audit_path,
                                                                                    evidence):
    reach = target()
    found = evidence.record(log_in_operation(reach.client(), reach.profile.negative_example, audit_path,
                                             _reader(audit_path), full_disk))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.details["statuses"]["with the disk full"] == 503 and found.details["log_mode"] == "0o600"


def _reader_of(path):
    """The deployed log as an operator reads it; a folder or a device holds no records."""
    def read_log():
        if not path.is_file():
            return [], ""
        return read_records(path), path.read_text()
    return read_log


@pytest.mark.white_box("starts the service in-process with audit log paths that keep nothing")
@pytest.mark.finding("MED-2")
@pytest.mark.parametrize("wrong", ["/dev/null", "a folder"])
@runs(probe_then_read_log)
def test_an_audit_log_path_that_keeps_nothing_is_refused_at_start(variant, trained, service_app, audit_path, tmp_path,
                                                                  wrong, assessor_key, evidence):
    """``FRAUDPIPE_AUDIT_LOG=/dev/null`` (or a folder) would discard every record while the service reports
    ready: it must refuse to start, and the log the operator then names must hold the trail."""
    path = Path(wrong)
    if wrong == "a folder":
        path = tmp_path / "logs"
        path.mkdir()
    client, refusal = deploy(lambda **o: service_app(variant, trained.with_overrides(**o)),
                             {"audit_log": path}, {"audit_log": audit_path})
    health = client.get("/health")
    found = evidence.record(probe_then_read_log(client, _reader_of(audit_path if refusal else path), PROFILE,
                                                assessor_key, n=20))
    found.summary = f"{as_deployed(f'audit log {wrong}', refusal)}, health {health.status}: {found.summary}"
    found.details.update(refused_at_start=refusal, health_status=health.status)
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert refusal and found.measurements["log_records"] == 20


@pytest.mark.finding("MED-2")
@runs(target_audit_trail)
def test_the_targets_own_log_keeps_one_record_per_request_with_the_real_address(grey_box, evidence):
    """Grey-box: the profile's ``[audit]`` names the target's log; the records it appends are read, never written."""
    reach = grey_box()
    grey_box_part(reach.profile.audit, "audit", "MED-2")
    allocation = reach.allocation
    addresses = {s.address for s in allocation.slices if s.address} | set(allocation.keyless_addresses)
    flood = reach.fresh() if allocation.fresh else None
    found = evidence.record(target_audit_trail(reach.client(), reach.keyless(), reach.profile, reach.key,
                                               reach.target.api_keys, addresses, flood=flood))
    assert not found.attack_succeeded, found.summary
