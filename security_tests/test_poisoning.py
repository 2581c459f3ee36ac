import pytest

from security_tests.attacks.poisoning import poison_training
from security_tests.conftest import expect_attack, variant_controls


@pytest.mark.white_box("training-time control: train runs the data gate")
@pytest.mark.finding("MED-3")
def test_poisoned_training_data_is_refused_by_the_data_gate(request, variant, evidence):
    profile, controls = variant_controls(variant, request.config.getoption("break_control"))
    evidence.update(poison_training(gate_on=profile == "hardened" and controls.get("data_gate", True)))
    assert evidence["clean_data_passes_gate"], "the gate must not refuse clean data"
    expect_attack(variant, evidence)


@pytest.mark.white_box("training-time control: train runs the data gate")
@pytest.mark.finding("MED-3")
def test_signed_dataset_hash_matches_the_data_that_trained_the_model(trained, evidence):
    from fraudpipe.artifacts import load_artifacts
    from fraudpipe.data import Recipe, dataset_sha256, generate_transactions

    provenance = load_artifacts(trained.artifacts_dir, trained.trusted_key, pickles=False).manifest["provenance"]
    regenerated = dataset_sha256(generate_transactions(**Recipe(**provenance["recipe"]).as_dict()))
    other = dataset_sha256(generate_transactions(**{**provenance["recipe"], "seed": provenance["recipe"]["seed"] + 1}))
    evidence.update({"signed_dataset_sha256": provenance["dataset_sha256"], "regenerated_sha256": regenerated,
                     "other_seed_sha256": other, "data_gate": provenance["data_gate"],
                     "attack_succeeded": regenerated != provenance["dataset_sha256"],
                     "summary": f"signed dataset hash {provenance['dataset_sha256'][:16]}… "
                                f"{'matches' if regenerated == provenance['dataset_sha256'] else 'DIFFERS FROM'} "
                                f"the regenerated data; another seed gives {other[:16]}…"})
    assert regenerated == provenance["dataset_sha256"] != other
