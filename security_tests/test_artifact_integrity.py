import pytest

from security_tests.attacks.tampering import tamper_and_load
from security_tests.conftest import attack_should_succeed, expect_attack


@pytest.mark.white_box("tampering needs write access to the model folder; run python -m fraudpipe verify on the deployed folder")
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", ["append", "trojan", "scaler"])
def test_tampered_model_is_refused_before_unpickling(variant, mode, trained, start_on_folder, tmp_path,
                                                    evidence):
    evidence.update(tamper_and_load(trained.artifacts_dir, tmp_path, mode, start_on_folder))
    expect_attack(variant, evidence)
    if not attack_should_succeed(variant):
        assert not evidence["marker_written"] and evidence["predict_status"] == 503
    elif mode == "trojan":
        assert evidence["marker_written"] and evidence["service_ready"], "the trojan ran and the model serves"
    elif mode == "scaler":
        assert evidence["seed_transaction_label"] == "LEGITIMATE", "the doctored scaler moved the boundary"
