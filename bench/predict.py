"""/predict speed: the seed's call pattern against the hardened service, side by side, in one run.

Prints medians and ratios for (1) the model call for one row, with an exactness check on the test set
and a boundary-stress set, and (2) /predict through the Flask test client with every control on.
Requests per second through gunicorn are measured by bench/serve.py.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np

from bench.common import TRANSACTION, fmt_us, median_seconds, seed_app, trained_settings
from fraudpipe import create_app
from fraudpipe.artifacts import load_artifacts
from fraudpipe.compiled import boundary_stress_set
from fraudpipe.data import feature_matrix, generate_transactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    settings = trained_settings()
    loaded = load_artifacts(settings.artifacts_dir, settings.trusted_key)
    compiled, forest, scaler = loaded.compiled, loaded.forest, loaded.scaler

    X = feature_matrix(generate_transactions(2_000, seed=77))
    stress = np.vstack([boundary_stress_set(compiled, row) for row in X[:10]])
    exact = True
    for rows in (X, stress):
        labels, proba = compiled.predict(rows)
        one_by_one = np.array([compiled.predict_one(r)[1] for r in rows])
        exact &= bool(np.array_equal(one_by_one, proba))
        scaled = scaler.transform(rows)
        exact &= bool(np.array_equal(proba, forest.predict_proba(scaled)[:, 1]))
        exact &= bool(np.array_equal(labels, forest.predict(scaled)))

    row = X[:1]
    forest.set_params(n_jobs=-1)
    seed_call = median_seconds(lambda: (forest.predict(scaler.transform(row)),
                                        forest.predict_proba(scaler.transform(row))), max(args.repeat // 10, 20))
    fast_call = median_seconds(lambda: compiled.predict_one(row[0]), args.repeat * 10)  # the serving path

    seed_client = seed_app(settings.artifacts_dir).test_client()
    hardened_client = create_app("hardened", settings=settings).test_client()
    headers = {"X-API-Key": settings.api_keys[0]}
    assert hardened_client.post("/predict", json=TRANSACTION, headers=headers).status_code == 200
    seed_req = median_seconds(lambda: seed_client.post("/predict", json=TRANSACTION), max(args.repeat // 10, 20))
    hard_req = median_seconds(lambda: hardened_client.post("/predict", json=TRANSACTION, headers=headers), args.repeat)

    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"exactness vs scikit-learn on {len(X)} test rows + {len(stress)} boundary rows: "
          f"{'IDENTICAL' if exact else 'DIFFERENT'}")
    print(f"{'measurement':<46}{'seed':>14}{'hardened':>14}{'ratio':>10}")
    print(f"{'model call, one row (median)':<46}{fmt_us(seed_call):>14}{fmt_us(fast_call):>14}"
          f"{seed_call / fast_call:>9.0f}x")
    print(f"{'/predict via Flask test client (median)':<46}{fmt_us(seed_req):>14}{fmt_us(hard_req):>14}"
          f"{seed_req / hard_req:>9.0f}x")
    print(f"target: model call <= 50 µs: {'met' if fast_call <= 50e-6 else 'MISSED'}; "
          f"/predict >= 50x the seed: {'met' if seed_req / hard_req >= 50 else 'MISSED'}")


if __name__ == "__main__":
    main()
