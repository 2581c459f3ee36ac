import pytest

from security_tests.attacks.poisoning import dataset_provenance, poison_training
from security_tests.contract import expect_attack


@pytest.mark.white_box("training-time control: train runs the data gate")
@pytest.mark.finding("MED-3")
def test_poisoned_training_data_is_refused_by_the_data_gate(variant, evidence):
    found = evidence.record(poison_training(gate_on=variant.control_on("data_gate")))
    assert found.details["clean_data_passes_gate"], "the gate must not refuse clean data"
    expect_attack(variant, found)


@pytest.mark.white_box("training-time control: train runs the data gate")
@pytest.mark.finding("MED-3")
def test_signed_dataset_hash_matches_the_data_that_trained_the_model(trained, evidence):
    from fraudpipe.artifacts import load_artifacts

    provenance = load_artifacts(trained.artifacts_dir, trained.trusted_key, pickles=False).manifest["provenance"]
    found = evidence.record(dataset_provenance(provenance))
    assert not found.attack_succeeded and found.details["other_seed_sha256"] != provenance["dataset_sha256"]
