"""HIGH-2 — no integrity check when the artifacts are loaded: a release tampered with at rest (a payload
that runs or moves the boundary at load, any same-size change to any file, every way around the signature)
must be refused before anything in it is unpickled. Needs write access to the artifact folder, so it runs
in-process only (inherited, hardened, hardened without ``verify_artifacts``)."""

import pytest

from security_tests.attacks.artifact_integrity import LOAD_TIME_PAYLOADS, SAME_SIZE, tamper_and_serve
from security_tests.contract import expect_attack
from security_tests.markers import runs

BY_HAND = ("tampering needs write access to the artifact folder: check that the service refuses, before unpickling "
           "anything, a release whose files or signature differ from what was signed")


def _tamper(mode, trained, target, tmp_path):
    """The session's release, tampered in a copy; the service of this variant started on the copy."""
    return tamper_and_serve(trained.artifacts_dir, tmp_path, mode,
                            lambda folder: target(artifacts_dir=folder).client(), target().profile)


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", list(LOAD_TIME_PAYLOADS))
@runs(tamper_and_serve)
def test_tampered_model_is_refused_before_unpickling(variant, mode, trained, target, tmp_path, evidence):
    found = evidence.record(_tamper(mode, trained, target, tmp_path))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert not found.details["marker_written"] and found.measurements["predict_status"] == 503
    elif mode.startswith("trojan"):
        assert found.details["marker_written"] and found.details["service_ready"], "the trojan ran and the model serves"
    elif mode == "scaler":
        assert found.details["positive_example_answered_positive"] is False, "the doctored scaler moved the boundary"


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", list(SAME_SIZE))
@runs(tamper_and_serve)
def test_any_change_to_the_signed_release_is_refused(variant, mode, trained, target, tmp_path, evidence):
    found = evidence.record(_tamper(mode, trained, target, tmp_path))
    assert found.details["resized_files"] == [], "the tampering must keep every file's size"
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert not found.details["marker_written"] and found.measurements["predict_status"] == 503
