"""LOW-2 — model artifact and key hygiene: no key material in the artifacts or the audit log, artifacts
read-only, the signing key 0600 and outside the artifact folder; no route telling a caller without a key more
than ready or not. Inspects files and the operator's view, so it runs in-process only."""

import pytest

from fraudpipe.serving.audit import read_records
from security_tests.attacks.artifact_hygiene import anonymous_disclosure, folder_hygiene, key_hygiene
from security_tests.attacks.client import FlaskClient
from security_tests.contract import HARDENED, grey_box_part
from security_tests.markers import runs
from security_tests.targets.profile import fraudpipe_target


@pytest.mark.white_box("inspect the deployed artifact folder, key paths and modes, and the audit log")
@pytest.mark.finding("LOW-2")
@runs(key_hygiene)
def test_no_key_material_in_artifacts_or_logs_and_artifacts_are_read_only(
        trained, start_service, audit_path, assessor_key, tmp_path, evidence):
    client = start_service(HARDENED)
    for _ in range(5):
        client.predict(fraudpipe_target().positive_example)
    assert len(read_records(audit_path)) == 5
    secrets = [assessor_key.encode(), trained.signing_key.read_bytes().strip().splitlines()[1]]
    found = evidence.record(key_hygiene(trained.artifacts_dir, trained.signing_key, [audit_path], secrets, tmp_path))
    assert found.measurements["detector_hits_on_leaky_copy"] > 0
    assert not found.attack_succeeded, found.summary


@pytest.mark.white_box("compares every anonymous answer with what the operator's /health shows")
@pytest.mark.finding("LOW-2")
@pytest.mark.parametrize("state", ["ready", "not ready"])
@runs(anonymous_disclosure)
def test_an_anonymous_caller_learns_nothing_of_the_deployment_from_any_route(trained, start_service, tmp_path, state,
                                                                            evidence):
    """The profile, the model's hash prefix and the not-ready reasons (file names, the storage's state) are
    for operators: any route, ``/health`` included, answers a caller without a key ready or not and no more."""
    settings = {} if state == "ready" else {"artifacts_dir": tmp_path}
    operator = start_service(HARDENED, **settings)
    found = evidence.record(anonymous_disclosure(FlaskClient(operator.app), operator))
    assert found.measurements["details_on_the_operator_answer"] >= 2, "the search must find them where they are shown"
    assert not found.attack_succeeded, found.summary


@pytest.mark.finding("LOW-2")
@runs(folder_hygiene)
def test_the_targets_model_folder_is_not_writable_by_others_and_holds_no_keys(grey_box, evidence):
    """Grey-box: the folder of the profile's ``[artifacts]``, read only."""
    artifacts = grey_box_part(grey_box().profile.artifacts, "artifacts", "LOW-2")
    found = evidence.record(folder_hygiene(artifacts.folder))
    assert not found.attack_succeeded, found.summary
