"""Random in-range rows from a target profile alone (the schema-breaking bodies are MED-1's, in
``input_validation.py``)."""

from __future__ import annotations

import numpy as np

from security_tests.targets.profile import TargetProfile


def random_rows(profile: TargetProfile, n: int, seed: int) -> list[dict]:
    """Uniform over each field's accepted range: the attacker knows the schema, not the data."""
    rng = np.random.default_rng(seed)
    columns = []
    for spec in profile.fields:
        if spec.type == "float":
            columns.append(rng.uniform(spec.lowest, spec.highest, n))
        else:
            columns.append(rng.integers(int(np.ceil(spec.lowest)), int(np.floor(spec.highest)) + 1, n))
    return [profile.row(values) for values in zip(*columns)]
