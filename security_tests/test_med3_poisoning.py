"""MED-3 — training data can be poisoned without detection: poisoned sets (label flips, injected rows, and
one set per data-gate check that only that check can see) must be refused before training, through the
training job with its default arguments too, and the signed dataset hash must match the data. Training
time, so in-process only (inherited, hardened, hardened without ``data_gate``)."""

import pytest

from security_tests.attacks.poisoning import (CASES, dataset_provenance, gate_case, poison_training,
                                              train_on_swapped_labels)
from security_tests.contract import expect_attack
from security_tests.markers import runs

BY_HAND = ("training time: check that training refuses data that fails schema, range, drift or label-consistency "
           "checks, with its default arguments")


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("MED-3")
@runs(poison_training)
def test_poisoned_training_data_is_refused_by_the_data_gate(variant, evidence):
    found = evidence.record(poison_training(gate_on=variant.control_on("data_gate")))
    assert found.details["clean_data_passes_gate"], "the gate must not refuse clean data"
    expect_attack(variant, found)


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("MED-3")
@pytest.mark.parametrize("case", list(CASES))
@runs(gate_case)
def test_each_gate_check_refuses_what_only_it_can_see(variant, case, evidence):
    found = evidence.record(gate_case(case, gate_on=variant.control_on("data_gate")))
    assert found.details["clean_passes"], f"the gate must accept clean data: {found.details['clean_problems']}"
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.details["checks_that_fired"] == [found.details["check"]], "caught by its own check alone"


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("MED-3")
@runs(train_on_swapped_labels)
def test_train_refuses_poisoned_rows_by_default(variant, trained, tmp_path, evidence):
    """Through ``train`` itself, with its default arguments where the gate is on."""
    from fraudpipe.errors import DataValidationError
    from fraudpipe.pipeline import train

    options = {} if variant.control_on("data_gate") else {"validate_data": False}
    out = tmp_path / "model"
    found = evidence.record(train_on_swapped_labels(
        lambda frame: train(trained.with_overrides(artifacts_dir=out), frame=frame, progress=lambda _: None, **options),
        out.exists, DataValidationError, str(options or "default arguments")))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert not found.details["artifacts_written"], "a refused training run must write nothing"


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("MED-3")
@runs(dataset_provenance)
def test_signed_dataset_hash_matches_the_data_that_trained_the_model(trained, evidence):
    from fraudpipe.artifacts import load_artifacts

    provenance = load_artifacts(trained.artifacts_dir, trained.trusted_key, pickles=False).manifest["provenance"]
    found = evidence.record(dataset_provenance(provenance))
    assert not found.attack_succeeded and found.details["other_seed_sha256"] != provenance["dataset_sha256"]
