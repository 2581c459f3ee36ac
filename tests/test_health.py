"""/health is ready only when every dependency is, tells an anonymous caller nothing else, and never
shows an absolute path; the reasons go to the log and to a caller holding a valid key."""

import logging

import pytest

from fraudpipe import create_app
from security_tests.faults import full_disk

GOOD = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}


@pytest.fixture
def build(trained, tmp_path):
    def make(profile="hardened", **overrides):
        app = create_app(profile, settings=trained.with_overrides(audit_log=tmp_path / "audit.jsonl", **overrides))
        return app, app.extensions["fraudpipe"], app.test_client()

    return make


def test_anonymous_caller_learns_only_the_status_and_a_key_holder_the_details(build, assessor_key):
    _, _, client = build()
    assert client.get("/health").json == {"status": "ok"}
    assert client.get("/health", headers={"X-API-Key": "wrong"}).json == {"status": "ok"}
    detail = client.get("/health", headers={"X-API-Key": assessor_key}).json
    assert detail["ready"] and detail["reasons"] == [] and detail["artifacts_verified"]
    _, _, inherited = build("inherited")
    assert inherited.get("/health", headers={"X-API-Key": assessor_key}).json == {"status": "ok"}


def test_missing_artifacts_are_reported_without_absolute_paths(build, assessor_key, tmp_path, caplog):
    _, _, client = build(artifacts_dir=tmp_path / "secret-layout" / "missing")
    with caplog.at_level(logging.WARNING, logger="fraudpipe"):
        anonymous = client.get("/health")
        detail = client.get("/health", headers={"X-API-Key": assessor_key})
        predicted = client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key})
    assert anonymous.status_code == 503 and anonymous.json == {"status": "not ready"}
    assert detail.status_code == 503 and detail.json["reasons"][0].startswith("artifacts:")
    assert predicted.status_code == 503
    for text in (anonymous.get_data(as_text=True), detail.get_data(as_text=True), predicted.get_data(as_text=True),
                 caplog.text):
        assert str(tmp_path) not in text and "secret-layout" not in text
    assert "not ready: artifacts:" in caplog.text


def test_zero_api_keys_means_not_ready_and_nobody_is_answered(build):
    _, _, client = build(api_keys=())
    assert client.get("/health").status_code == 503
    for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": "anything"}):
        response = client.post("/predict", json=GOOD, headers=headers)
        assert response.status_code == 503 and response.json["error"] == "not_ready"


def test_every_readiness_check_counts_and_a_raising_check_is_a_failure_not_a_500(build, assessor_key):
    _, service, client = build()
    service.readiness_checks.append(lambda: "rate limit storage: Error 111 connecting to 127.0.0.1:1")
    detail = client.get("/health", headers={"X-API-Key": assessor_key})
    assert detail.status_code == 503 and "rate limit storage: Error 111" in detail.json["reasons"][0]
    service.readiness_checks[-1] = lambda: 1 / 0
    assert client.get("/health").status_code == 503


def test_a_rotated_audit_log_keeps_the_service_ready_and_is_reopened(build, assessor_key, tmp_path):
    _, _, client = build()
    assert client.get("/health").status_code == 200
    (tmp_path / "audit.jsonl").rename(tmp_path / "rotated.jsonl")
    assert client.get("/health", headers={"X-API-Key": assessor_key}).status_code == 200
    assert (tmp_path / "audit.jsonl").exists(), "the next record went to a new file at the configured path"


def test_an_unrecordable_request_gets_503_and_health_says_why(trained, assessor_key, tmp_path):
    """A full disk accepts the open and refuses every write: no answer leaves unrecorded."""
    app = create_app("hardened", settings=trained.with_overrides(audit_log=tmp_path / "audit.jsonl"))
    client = app.test_client()
    with full_disk():
        predicted = client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key})
        assert predicted.status_code == 503 and predicted.json["error"] == "not_ready"
        assert client.get("/health").status_code == 503
        assert "audit log: last write failed" in app.extensions["fraudpipe"].not_ready_reasons()[0]
