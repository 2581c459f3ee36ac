"""Each control on and off, every status code, and the settings."""

import json

import pytest

from fraudpipe import create_app
from fraudpipe.serving.app import CONTROL_NAMES, resolve_controls
from fraudpipe.serving.audit import read_records
from fraudpipe.serving.auth import add_key, key_hash
from fraudpipe.errors import ConfigError
from fraudpipe.settings import Settings

KEY_A, KEY_B = "k3y-A-0123456789abcdef", "k3y-B-0123456789abcdef"
GOOD = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}


@pytest.fixture
def make(trained, tmp_path, assessor_key):
    def build(profile="hardened", **overrides):
        off = {name for name in list(overrides) if name in CONTROL_NAMES and overrides[name] is False}
        values = {name: value for name, value in overrides.items() if name not in off}
        settings = trained.with_overrides(**{"audit_log": tmp_path / "audit.jsonl", **values})
        app = create_app(profile, settings=settings, controls_off=off)
        client = app.test_client()
        client.environ_base["HTTP_X_API_KEY"] = assessor_key
        return client

    return build


def test_profiles_switch_every_control():
    assert resolve_controls("hardened") == set(CONTROL_NAMES)
    assert resolve_controls("inherited") == set()
    assert "auth" not in resolve_controls("hardened", {"auth"})
    with pytest.raises(ConfigError):
        resolve_controls("staging")
    with pytest.raises(ConfigError):
        resolve_controls("hardened", {"atuh"})


def test_hardened_answers_label_only_and_inherited_adds_probability(make):
    assert set(make().post("/predict", json=GOOD).json) == {"prediction", "label"}
    assert make("inherited").post("/predict", json=GOOD).json["fraud_probability"] == 0.0
    assert "fraud_probability" in make(hide_probability=False).post("/predict", json=GOOD).json


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "wrong"}])
def test_auth_401_on_missing_empty_or_wrong_key(make, headers):
    client = make()
    client.environ_base.pop("HTTP_X_API_KEY")
    response = client.post("/predict", json=GOOD, headers=headers)
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    client_off = make(auth=False)
    client_off.environ_base.pop("HTTP_X_API_KEY")
    assert client_off.post("/predict", json=GOOD, headers=headers).status_code == 200


def test_keys_file_holds_hashes_and_the_audit_log_holds_key_ids(trained, tmp_path):
    keys_file = tmp_path / "keys.txt"
    key = add_key(keys_file, "partner-a")
    assert key not in keys_file.read_text() and key_hash(key).hex() in keys_file.read_text()
    settings = trained.with_overrides(api_keys=(), api_keys_file=keys_file, audit_log=tmp_path / "a.jsonl")
    client = create_app("hardened", settings=settings).test_client()
    assert client.post("/predict", json=GOOD, headers={"X-API-Key": key}).status_code == 200
    text = (tmp_path / "a.jsonl").read_text()
    assert read_records(tmp_path / "a.jsonl")[0]["key_id"] == "partner-a" and key not in text
    with pytest.raises(ConfigError):
        add_key(keys_file, "partner-a")


@pytest.mark.parametrize("kwargs, status, error", [
    ({"data": "x", "content_type": "text/plain"}, 415, "unsupported_media_type"),
    ({"data": "{" * 5000, "content_type": "application/json"}, 413, "payload_too_large"),
    ({"data": "{nope", "content_type": "application/json"}, 400, "malformed_json"),
    ({"json": [1, 2]}, 422, "invalid_fields"),
    ({"json": {**GOOD, "hour_of_day": 24}}, 422, "invalid_fields"),
    ({"json": {k: v for k, v in GOOD.items() if k != "amount"}}, 422, "invalid_fields"),
])
def test_validation_status_codes(make, kwargs, status, error):
    response = make().post("/predict", **kwargs)
    assert response.status_code == status and response.json["error"] == error


def test_inherited_refuses_only_missing_fields_and_crashes_without_a_trace(make):
    client = make("inherited")
    missing = client.post("/predict", json={"amount": 5})
    assert missing.status_code == 400 and "Missing fields" in missing.json["reason"]
    crashed = client.post("/predict", json={**GOOD, "amount": "abc"})
    assert crashed.status_code == 500 and crashed.json["error"] == "internal_error"
    assert "Traceback" not in crashed.get_data(as_text=True)


def test_rate_limit_429_with_retry_after_and_off_switch(make):
    client = make(rate_limit="3/minute")
    statuses = [client.post("/predict", json=GOOD).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.post("/predict", json=GOOD)
    assert refused.json["error"] == "too_many_requests" and int(refused.headers["Retry-After"]) > 0
    off = make(rate_limit=False)
    assert {off.post("/predict", json=GOOD).status_code for _ in range(5)} == {200}


def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(make):
    client = make(rate_limit="2/minute")
    statuses = [client.post("/predict", json=GOOD, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                for i in range(3)]
    assert statuses == [200, 200, 429]
    behind_proxy = make(rate_limit="2/minute", trusted_proxies=1, auth=False)
    statuses = [behind_proxy.post("/predict", json=GOOD, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                for i in range(3)]
    assert statuses == [200, 200, 200]


def test_unverifiable_artifacts_make_the_service_not_ready(make, tmp_path):
    client = make(artifacts_dir=tmp_path / "missing")
    assert client.get("/health").status_code == 503
    response = client.post("/predict", json=GOOD)
    assert response.status_code == 503 and response.json["error"] == "not_ready"


def test_health_reports_readiness_and_model_hash(make):
    body = make().get("/health").json
    assert body["ready"] and body["artifacts_verified"] and len(body["model_sha256_prefix"]) == 12


def test_json_404_405_and_security_headers(make):
    client = make()
    assert client.get("/nope").json["error"] == "not_found"
    response = client.get("/predict")
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_audit_log_one_line_per_request_accepted_or_rejected(make, tmp_path):
    client = make()
    client.post("/predict", json=GOOD)
    client.post("/predict", json={"amount": -1})
    records = read_records(tmp_path / "audit.jsonl")
    assert [r["status"] for r in records] == [200, 422]
    assert records[0]["probability"] is not None and records[0]["features"] == [42.5, 14.0, 2.0, 0.0]
    assert records[1]["reason"].startswith("invalid field")
    assert not make(audit_log=False).post("/predict", json=GOOD).status_code == 500


def test_openapi_documents_both_routes_and_errors(make):
    doc = make().get("/openapi.json").json
    assert set(doc["paths"]) == {"/health", "/predict", "/openapi.json"}
    codes = set(doc["paths"]["/predict"]["post"]["responses"])
    assert {"200", "400", "401", "413", "415", "422", "429", "503"} <= codes
    assert "fraud_probability" not in json.dumps(doc["components"]["schemas"]["Result"])


def test_settings_come_from_fraudpipe_environment_variables(tmp_path):
    settings = Settings.from_env({"FRAUDPIPE_API_KEYS": f"{KEY_A}, {KEY_B},,", "FRAUDPIPE_RATE_LIMIT": "5/second",
                                  "FRAUDPIPE_TRUSTED_PROXIES": "1", "FRAUDPIPE_AUDIT_LOG": "",
                                  "FRAUDPIPE_ARTIFACTS_DIR": str(tmp_path)})
    assert settings.api_keys == (KEY_A, KEY_B) and settings.rate_limit == "5/second"
    assert settings.trusted_proxies == 1 and settings.audit_log is None and settings.artifacts_dir == tmp_path
    with pytest.raises(ConfigError):
        Settings.from_env({"FRAUDPIPE_MAX_BODY_BYTES": "lots"})
    with pytest.raises(ConfigError):
        Settings().with_overrides(colour="red")


def test_import_does_no_work():
    import subprocess
    import sys

    code = "import sys, fraudpipe; print('flask' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_monitor_flags_single_feature_probing_and_can_block(make, trained, tmp_path):
    client = make(monitor_block=True)
    statuses = [client.post("/predict", json={**GOOD, "hour_of_day": hour}).status_code for hour in range(12)]
    assert statuses[:7] == [200] * 7 and statuses[-1] == 403
    alerts = [r for r in read_records(tmp_path / "audit.jsonl") if r.get("type") == "alert"]
    assert alerts[0]["detector"] == "probing" and alerts[0]["at_query"] == 7
    off = make(monitor=False, monitor_block=True)
    assert {off.post("/predict", json={**GOOD, "hour_of_day": hour}).status_code for hour in range(12)} == {200}


def test_monitor_leaves_varied_traffic_alone():
    from fraudpipe.data import feature_matrix, generate_transactions
    from fraudpipe.serving.monitor import QueryMonitor

    monitor = QueryMonitor()
    rows = feature_matrix(generate_transactions(60, seed=8)).tolist()
    assert not [a for row in rows for a in monitor.observe({"key_id": "k", "features": row, "status": 200})]
