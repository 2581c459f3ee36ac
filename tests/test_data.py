import numpy as np
import pytest

from fraudpipe.data import FEATURE_NAMES, FEATURES, dataset_sha256, generate_transactions
from fraudpipe.errors import DataValidationError


def test_default_data_follows_the_seed_recipe():
    frame = generate_transactions()
    assert list(frame.columns) == [*FEATURE_NAMES, "label"]
    assert len(frame) == 10_000 and frame["label"].sum() == 500
    legit, fraud = frame[frame.label == 0], frame[frame.label == 1]
    assert legit.amount.between(1, 500).all() and fraud.amount.between(1, 2000).all()
    assert legit.hour_of_day.between(6, 22).all() and fraud.hour_of_day.between(0, 4).all()
    assert abs(legit.amount.mean() - 50) < 2 and abs(fraud.amount.mean() - 300) < 15
    assert abs(legit.transactions_24h.mean() - 3) < 0.1 and abs(fraud.transactions_24h.mean() - 15) < 0.6
    assert abs(legit.foreign_transaction.mean() - 0.05) < 0.01 and abs(fraud.foreign_transaction.mean() - 0.8) < 0.05


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    assert dataset_sha256(generate_transactions(seed=3)) == dataset_sha256(generate_transactions(seed=3))
    assert dataset_sha256(generate_transactions(seed=3)) != dataset_sha256(generate_transactions(seed=4))


def test_every_generated_value_is_inside_the_schema_the_api_enforces():
    frame = generate_transactions(50_000, seed=9)
    for feature in FEATURES:
        assert all(feature.contains(v) for v in np.unique(frame[feature.name]))


@pytest.mark.parametrize("kwargs", [{"n_rows": 0}, {"fraud_rate": -0.1}, {"fraud_rate": 1.0}, {"n_rows": 3, "fraud_rate": 0.01}])
def test_impossible_recipes_are_refused(kwargs):
    with pytest.raises(DataValidationError):
        generate_transactions(**kwargs)
