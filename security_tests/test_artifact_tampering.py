"""HIGH-2 across its whole family: same-size tampering of every file, and every way around the signature."""

import pytest

from security_tests.attacks.artifact_tampering import TAMPERINGS, tamper_same_size
from security_tests.contract import expect_attack


@pytest.mark.white_box("tampering needs write access to the model folder; run python -m fraudpipe verify on the deployed folder")
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", list(TAMPERINGS))
def test_any_change_to_the_signed_release_is_refused(variant, mode, trained, service_app, tmp_path, evidence):
    found = evidence.record(tamper_same_size(
        trained.artifacts_dir, tmp_path, mode,
        lambda folder: service_app(variant, trained.with_overrides(artifacts_dir=folder, audit_log=None))))
    assert found.details["resized_files"] == [], "the tampering must keep every file's size"
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert not found.details["marker_written"] and found.measurements["predict_status"] == 503
