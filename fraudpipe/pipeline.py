"""The main job: generate data, fit, evaluate, draw the charts, write and sign the artifacts."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

from fraudpipe import charts, signing
from fraudpipe.artifacts import save_artifacts
from fraudpipe.data import Recipe, dataset_sha256, generate_transactions
from fraudpipe.model import evaluate, fit
from fraudpipe.settings import Settings


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train(settings: Settings, out: Path | None = None, recipe: Recipe = Recipe(),
          progress: Callable[[str], None] = _stderr) -> dict:
    """Returns the metrics; raises a FraudpipeError subclass with a one-line reason on bad input."""
    recipe.check()
    out = Path(out or settings.artifacts_dir)
    if out.exists() and not out.is_dir():
        from fraudpipe.errors import ConfigError
        raise ConfigError(f"{out}: exists and is not a folder")
    if signing.ensure_keypair(settings.signing_key, settings.trusted_key):
        progress(f"created signing key {settings.signing_key} (0600) and trusted key {settings.trusted_key}")
    private_key = signing.load_private_key(settings.signing_key)
    started = time.perf_counter()
    progress(f"generating {recipe.n_rows:,} transactions (fraud rate {recipe.fraud_rate}, seed {recipe.seed})")
    frame = generate_transactions(recipe.n_rows, recipe.fraud_rate, recipe.seed)
    progress("fitting scaler and random forest on all cores")
    trained = fit(frame, seed=recipe.seed)
    progress("evaluating on the held-out 20 %")
    metrics = evaluate(trained)
    cm = metrics["confusion_matrix"]
    images = {
        "confusion_matrix.png": charts.confusion_matrix_png(cm["tn"], cm["fp"], cm["fn"], cm["tp"]),
        "roc_curve.png": charts.line_png({f"ROC (AUC {metrics['roc_auc']:.4f})":
                                          (metrics["roc_curve"]["fpr"], metrics["roc_curve"]["tpr"])},
                                         "ROC curve", "false positive rate", "true positive rate"),
    }
    provenance = {"generator": "fraudpipe.data.generate_transactions", "recipe": recipe.as_dict(),
                  "dataset_sha256": dataset_sha256(frame), "rows": int(len(frame))}
    save_artifacts(out, trained, metrics, images, private_key, provenance)
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    metrics["out"] = str(out)
    return metrics
