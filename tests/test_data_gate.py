import pytest

from fraudpipe import data_gate
from fraudpipe.data import generate_transactions
from fraudpipe.errors import DataValidationError
from fraudpipe.pipeline import train
from security_tests.attacks.poisoning import inject, label_flip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_data_from_other_seeds_passes_against_the_reference(seed):
    reference = data_gate.profile(generate_transactions())
    report = data_gate.check(generate_transactions(seed=seed), reference)
    assert report.passed, report.problems


@pytest.mark.parametrize("poison", [label_flip, inject])
def test_one_percent_poisoning_is_refused(poison):
    clean = generate_transactions()
    report = data_gate.check(poison(clean, 0.01, seed=5), data_gate.profile(clean))
    assert not report.passed


def test_schema_and_range_violations_are_refused():
    frame = generate_transactions(1_000)
    assert not data_gate.check(frame.drop(columns=["amount"])).passed
    frame.loc[0, "hour_of_day"] = 30
    assert "hour_of_day" in data_gate.check(frame).problems[0]


def test_train_refuses_poisoned_rows_with_one_line(trained, tmp_path):
    settings = trained.with_overrides(artifacts_dir=tmp_path / "m")
    poisoned = label_flip(generate_transactions(), 0.05, seed=1)
    with pytest.raises(DataValidationError, match="refused by the data gate"):
        train(settings, frame=poisoned, progress=lambda _: None)
    assert not (tmp_path / "m").exists()
