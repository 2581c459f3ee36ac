"""The main job: generate data, fit, evaluate, draw the charts, write and sign the artifacts."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from fraudpipe import charts, data_gate, signing
from fraudpipe.artifacts import check_output_folder, save_artifacts
from fraudpipe.data import Recipe, dataset_sha256, generate_transactions
from fraudpipe.errors import ConfigError, DataValidationError, FraudpipeError
from fraudpipe.model import evaluate, fit
from fraudpipe.settings import Settings


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _trusted_profile(out: Path, settings: Settings) -> dict | None:
    """The data profile in the current, verified release: what new training data is compared against.

    Only a new or empty folder has nothing to drift from. A release that does not verify is refused
    rather than treated as absent: otherwise tampering with it would silently switch the drift check off.
    """
    from fraudpipe.artifacts import load_artifacts

    if not out.exists() or not any(out.iterdir()):
        return None
    try:
        return load_artifacts(out, settings.trusted_key, pickles=False).manifest["provenance"].get("profile")
    except FraudpipeError as exc:
        raise ConfigError(f"{out}: the release to replace does not verify, so its data profile cannot be the "
                          f"drift reference ({exc}); restore it or train into a new folder") from None


def train(settings: Settings, out: Path | None = None, recipe: Recipe = Recipe(),
          progress: Callable[[str], None] = _stderr, frame: pd.DataFrame | None = None,
          validate_data: bool = True, reference: dict | None = None) -> dict:
    """Returns the metrics; raises a FraudpipeError subclass with a one-line reason on bad input.

    ``frame`` trains on supplied rows instead of generating them; the data gate checks them first
    (against ``reference``, a profile from a trusted manifest, when given) and refuses poisoned data.
    """
    recipe.check()
    out = check_output_folder(out or settings.artifacts_dir)
    if signing.ensure_keypair(settings.signing_key, settings.trusted_key):
        progress(f"created signing key {settings.signing_key} (0600) and trusted key {settings.trusted_key}")
    private_key = signing.load_private_key(settings.signing_key)
    reference = reference if reference is not None else _trusted_profile(out, settings)
    started = time.perf_counter()
    if frame is None:
        progress(f"generating {recipe.n_rows:,} transactions (fraud rate {recipe.fraud_rate}, seed {recipe.seed})")
        frame = generate_transactions(recipe.n_rows, recipe.fraud_rate, recipe.seed)
        generator = {"generator": "fraudpipe.data.generate_transactions", "recipe": recipe.as_dict()}
    else:
        generator = {"generator": "supplied frame", "recipe": None}
    gate = data_gate.check(frame, reference)
    if validate_data and not gate.passed:
        raise DataValidationError("training data refused by the data gate: " + "; ".join(gate.problems))
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
    provenance = {**generator, "dataset_sha256": dataset_sha256(frame), "rows": int(len(frame)),
                  "profile": gate.profile or data_gate.profile(frame), "data_gate": {
                      "enforced": validate_data, "passed": gate.passed, "problems": gate.problems,
                      "label_disagreement": gate.disagreement}}
    previous = save_artifacts(out, trained, metrics, images, private_key, provenance)
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    metrics["out"] = str(out)
    metrics["previous"] = str(previous) if previous else None
    return metrics
