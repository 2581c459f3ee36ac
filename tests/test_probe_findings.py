"""What an outside probe of the hardened service found failing open, each now refused or closed."""

import os

import pytest

from fraudpipe import create_app
from fraudpipe.errors import ConfigError
from fraudpipe.serving.audit import read_records
from fraudpipe.settings import Settings

GOOD = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}


@pytest.mark.parametrize("rate", ["100/minute;2/second", "50/second;3/minute", "100/minute,2/second",
                                  "9223372036854775808/minute", "99999999999999999999999/minute"])
def test_a_rate_limit_the_limiter_would_not_enforce_whole_is_refused(rate):
    with pytest.raises(ConfigError, match="FRAUDPIPE_RATE_LIMIT"):
        Settings.from_env({"FRAUDPIPE_RATE_LIMIT": rate})


@pytest.mark.parametrize("value", [" ", "/dev/null"])
def test_an_audit_log_setting_that_would_discard_records_is_refused(value):
    with pytest.raises(ConfigError, match="FRAUDPIPE_AUDIT_LOG"):
        Settings.from_env({"FRAUDPIPE_AUDIT_LOG": value})


def test_an_upper_case_storage_scheme_is_refused_at_start():
    with pytest.raises(ConfigError, match="FRAUDPIPE_RATE_LIMIT_STORAGE"):
        Settings.from_env({"FRAUDPIPE_RATE_LIMIT_STORAGE": "REDIS://127.0.0.1:1"})


def test_a_trusted_key_inside_the_artifact_folder_is_refused(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(ConfigError, match="FRAUDPIPE_TRUSTED_KEY"):
        Settings(artifacts_dir=tmp_path / "model", trusted_key=tmp_path / "model" / "trusted-key.pub", audit_log=None)
    os.symlink(tmp_path / "model" / "trusted-key.pub", tmp_path / "outside.pub")
    with pytest.raises(ConfigError, match="FRAUDPIPE_TRUSTED_KEY"):
        Settings(artifacts_dir=tmp_path / "model", trusted_key=tmp_path / "outside.pub", audit_log=None)


def test_a_malformed_keys_file_stops_the_service_at_start_with_one_line(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("partner " + "A" * 64 + "\n")
    with pytest.raises(ConfigError, match="expected"):
        Settings(api_keys_file=keys, audit_log=None)


def test_a_rotated_or_deleted_audit_log_is_reopened_so_no_answer_goes_unrecorded(trained, tmp_path, assessor_key):
    log = tmp_path / "audit.jsonl"
    client = create_app("hardened", settings=trained.with_overrides(audit_log=log)).test_client()
    headers = {"X-API-Key": assessor_key}
    assert client.post("/predict", json=GOOD, headers=headers).status_code == 200
    log.rename(tmp_path / "audit.1.jsonl")
    assert client.post("/predict", json=GOOD, headers=headers).status_code == 200
    log.unlink()
    assert client.post("/predict", json=GOOD, headers=headers).status_code == 200
    assert len(read_records(tmp_path / "audit.1.jsonl")) == 1 and len(read_records(log)) == 1
    assert client.get("/health").status_code == 200


def test_two_api_key_headers_are_refused_whatever_their_order(trained, assessor_key):
    client = create_app("hardened", settings=trained).test_client()
    for pair in (["wrong-key", assessor_key], [assessor_key, "wrong-key"], [assessor_key, assessor_key]):
        response = client.post("/predict", json=GOOD, headers=[("X-API-Key", k) for k in pair])
        assert response.status_code in (400, 401), pair


@pytest.mark.parametrize("forwarded, recorded", [("1.2.3.4:1", "1.2.3.4"), ("::ffff:1.2.3.4", "1.2.3.4"),
                                                 ("[2001:db8::1]:443", "2001:db8::1"), ("junk", "198.51.100.7"),
                                                 ("8.8.8.8", "8.8.8.8")])
def test_a_forwarded_address_is_normalised_or_replaced_by_the_peer(trained, tmp_path, forwarded, recorded):
    log = tmp_path / "audit.jsonl"
    settings = trained.with_overrides(audit_log=log, trusted_proxies=1)
    client = create_app("hardened", settings=settings).test_client()
    client.post("/predict", json=GOOD, headers={"X-Forwarded-For": forwarded},
                environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert read_records(log)[-1]["client"] == recorded


def test_ports_on_a_forwarded_address_do_not_buy_a_new_budget(trained):
    client = create_app("hardened", settings=trained.with_overrides(trusted_proxies=1, rate_limit="5/minute"),
                        ).test_client()
    statuses = [client.post("/predict", json=GOOD, headers={"X-Forwarded-For": f"1.2.3.4:{port}"}).status_code
                for port in range(1, 11)]
    assert statuses.count(429) == 5, statuses


def test_a_hard_linked_artifact_is_refused(trained, tmp_path):
    import shutil

    from fraudpipe.artifacts import ArtifactError, load_artifacts

    release = tmp_path / "release"
    shutil.copytree(trained.artifacts_dir, release)
    (release / "forest.npz").chmod(0o644)
    os.link(release / "forest.npz", tmp_path / "elsewhere.npz")
    with pytest.raises(ArtifactError, match="hard links"):
        load_artifacts(release, trained.trusted_key, pickles=False)


def test_sign_refuses_files_that_differ_from_the_signed_manifest_unless_told_to_reattest(trained, tmp_path):
    import shutil

    from fraudpipe import signing
    from fraudpipe.artifacts import ArtifactError, resign

    release = tmp_path / "release"
    shutil.copytree(trained.artifacts_dir, release)
    forest = release / "forest.npz"
    forest.chmod(0o644)
    forest.write_bytes(forest.read_bytes() + b"\0")
    private, public = signing.load_private_key(trained.signing_key), signing.load_public_key(trained.trusted_key)
    with pytest.raises(ArtifactError, match="differs from the signed manifest"):
        resign(release, private, public)
    notices = []
    resign(release, private, public, reattest_provenance=True, announce=notices.append)
