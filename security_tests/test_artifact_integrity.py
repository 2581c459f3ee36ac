import pytest

from security_tests.attacks.tampering import tamper_and_load
from security_tests.contract import expect_attack


@pytest.mark.white_box("tampering needs write access to the model folder; run python -m fraudpipe verify on the deployed folder")
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", ["append", "trojan", "scaler"])
def test_tampered_model_is_refused_before_unpickling(variant, mode, trained, service_app, tmp_path, evidence):
    def start(folder):
        return service_app(variant, trained.with_overrides(artifacts_dir=folder, audit_log=None))

    found = evidence.record(tamper_and_load(trained.artifacts_dir, tmp_path, mode, start))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert not found.details["marker_written"] and found.measurements["predict_status"] == 503
    elif mode == "trojan":
        assert found.details["marker_written"] and found.details["service_ready"], "the trojan ran and the model serves"
    elif mode == "scaler":
        assert found.details["fraud_example_label"] == "LEGITIMATE", "the doctored scaler moved the boundary"
