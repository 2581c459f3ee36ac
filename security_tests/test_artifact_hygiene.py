import shutil

import pytest

from fraudpipe.serving.audit import read_records
from security_tests.attacks.exposure import scan_secrets
from security_tests.attacks.probing import SEED_TRANSACTION


@pytest.mark.white_box("inspect the deployed artifact folder, key paths and modes, and the audit log")
@pytest.mark.finding("LOW-2")
def test_no_key_material_in_artifacts_or_logs_and_artifacts_are_read_only(
        trained, start_service, audit_path, assessor_key, tmp_path, evidence):
    client = start_service("hardened")
    for _ in range(5):
        client.predict(SEED_TRANSACTION)
    assert len(read_records(audit_path)) == 5
    private_pem = trained.signing_key.read_bytes()
    secrets = [assessor_key.encode(), private_pem.strip().splitlines()[1]]
    files = sorted(trained.artifacts_dir.iterdir()) + [audit_path]
    result = scan_secrets(files, secrets)
    leaky = tmp_path / "leaky"
    shutil.copytree(trained.artifacts_dir, leaky)
    shutil.copy(trained.signing_key, leaky / "signing-key.pem")
    detector = scan_secrets(sorted(leaky.iterdir()), secrets)
    writable = [p.name for p in trained.artifacts_dir.iterdir() if p.stat().st_mode & 0o222]
    key_mode = oct(trained.signing_key.stat().st_mode & 0o777)
    key_outside = trained.artifacts_dir not in trained.signing_key.parents
    evidence.update({**result, "writable_artifacts": writable, "signing_key_mode": key_mode,
                     "signing_key_outside_artifacts": key_outside, "detector_hits_on_leaky_copy": len(detector["hits"]),
                     "attack_succeeded": result["secrets_found"] or bool(writable) or key_mode != "0o600" or not key_outside,
                     "summary": f"{result['files_scanned']} files scanned, {len(result['hits'])} key-material hits; "
                                f"writable artifacts {writable}; signing key mode {key_mode}, outside artifacts "
                                f"{key_outside}; the scan finds {len(detector['hits'])} hits in a copy with the key"})
    assert detector["secrets_found"]
    assert not evidence["attack_succeeded"]
