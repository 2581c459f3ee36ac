"""Synthetic transactions and the one feature schema that training, validation and the API share.

The recipe is the acquired service's own (see ``shared/seed``): legitimate rows at day-time hours,
fraud rows at night. The hours of the two classes never overlap, which is why the model later keys on
``hour_of_day`` alone; the assessment measures the consequences instead of hiding them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Feature:
    """One model input: its JSON type, the range the API accepts, the range real transactions span
    (``typical``: what an attacker who knows the domain draws from) and ``unit``, the size of one
    meaningful step (the monitor's distances and the evasion search are measured in units)."""

    name: str
    kind: str  # "float" or "int"
    low: float
    high: float
    typical: tuple[float, float]
    unit: float = 1.0
    low_inclusive: bool = True
    attacker_controlled: bool = True
    description: str = ""

    def contains(self, value: float) -> bool:
        above = value >= self.low if self.low_inclusive else value > self.low
        return bool(above and value <= self.high)

    def cast(self, value: float) -> int | float:
        """The JSON value of this feature: integers rounded, amounts to the cent."""
        return int(round(float(value))) if self.kind == "int" else round(float(value), 2)


FEATURES: tuple[Feature, ...] = (
    Feature("amount", "float", 0.0, 1_000_000.0, typical=(1.0, 2000.0), unit=100.0, low_inclusive=False,
            description="transaction amount in dollars"),
    Feature("hour_of_day", "int", 0, 23, typical=(0, 23), description="local hour the transaction was made"),
    Feature("transactions_24h", "int", 0, 1_000, typical=(0, 40), description="card transactions in the last 24 h"),
    Feature("foreign_transaction", "int", 0, 1, typical=(0, 1), description="1 if the merchant is abroad"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
UNITS: np.ndarray = np.array([f.unit for f in FEATURES])
LABEL = "label"

FRAUD_EXAMPLE: dict = {"amount": 800.0, "hour_of_day": 2, "transactions_24h": 20, "foreign_transaction": 1}
"""A fraudulent transaction as the seed recipe draws them: large, at night, busy card, abroad."""
LEGITIMATE_EXAMPLE: dict = {"amount": 120.0, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}
"""A legitimate one: modest, day-time, quiet card, at home."""


def as_transaction(values) -> dict:
    """A feature vector (in ``FEATURE_NAMES`` order) as the JSON body the API takes."""
    return {f.name: f.cast(v) for f, v in zip(FEATURES, values)}


@dataclass(frozen=True)
class Recipe:
    """The generator's parameters; recorded in the signed manifest as provenance."""

    n_rows: int = 10_000
    fraud_rate: float = 0.05
    seed: int = 42

    def check(self) -> None:
        from fraudpipe.errors import DataValidationError

        if not isinstance(self.n_rows, int) or self.n_rows < 2:
            raise DataValidationError(f"rows must be an integer of at least 2, got {self.n_rows!r}")
        if not 0.0 < self.fraud_rate < 1.0:
            raise DataValidationError(f"fraud rate must be strictly between 0 and 1, got {self.fraud_rate!r}")
        n_fraud = round(self.n_rows * self.fraud_rate)
        if n_fraud < 1 or n_fraud >= self.n_rows:
            raise DataValidationError(
                f"{self.n_rows} rows at fraud rate {self.fraud_rate} leave a class empty")

    def as_dict(self) -> dict:
        return asdict(self)


def generate_transactions(n_rows: int = 10_000, fraud_rate: float = 0.05, seed: int = 42) -> pd.DataFrame:
    """Draw the seed recipe's transactions, vectorised, shuffled; the same seed gives the same bytes."""
    recipe = Recipe(n_rows, fraud_rate, seed)
    recipe.check()
    rng = np.random.default_rng(seed)
    n_fraud = round(n_rows * fraud_rate)
    n_legit = n_rows - n_fraud
    amount = np.concatenate([
        rng.normal(50, 25, n_legit).clip(1, 500),
        rng.normal(300, 100, n_fraud).clip(1, 2000),
    ])
    hour = np.concatenate([rng.integers(6, 23, n_legit), rng.integers(0, 5, n_fraud)])
    tx24 = np.concatenate([rng.poisson(3, n_legit), rng.poisson(15, n_fraud)])
    foreign = np.concatenate([rng.binomial(1, 0.05, n_legit), rng.binomial(1, 0.8, n_fraud)])
    label = np.concatenate([np.zeros(n_legit, np.int64), np.ones(n_fraud, np.int64)])
    order = rng.permutation(n_rows)
    return pd.DataFrame({
        "amount": amount[order].round(2),
        "hour_of_day": hour[order].astype(np.int64),
        "transactions_24h": tx24[order].astype(np.int64),
        "foreign_transaction": foreign[order].astype(np.int64),
        LABEL: label[order],
    })


def dataset_sha256(frame: pd.DataFrame) -> str:
    """Hash columns, dtypes and values, so provenance ties a model to exactly the rows it learned from."""
    digest = hashlib.sha256()
    for column in frame.columns:
        values = np.ascontiguousarray(frame[column].to_numpy())
        digest.update(f"{column}:{values.dtype.str}:{len(values)};".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
