"""HIGH-2 across its whole family: same-size tampering of every file, and every way around the signature."""

import pytest

from security_tests.attacks.artifact_tampering import TAMPERINGS, tamper_same_size
from security_tests.conftest import attack_should_succeed, expect_attack


@pytest.mark.white_box("tampering needs write access to the model folder; run python -m fraudpipe verify on the deployed folder")
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", list(TAMPERINGS))
def test_any_change_to_the_signed_release_is_refused(variant, mode, trained, start_on_folder, tmp_path,
                                                     evidence):
    evidence.update(tamper_same_size(trained.artifacts_dir, tmp_path, mode, start_on_folder))
    assert evidence["resized_files"] == [], "the tampering must keep every file's size"
    expect_attack(variant, evidence)
    if not attack_should_succeed(variant):
        assert not evidence["marker_written"] and evidence["predict_status"] == 503
