"""What was assessed: the model, its artifacts and the software, recorded for the report's cover and scope."""

import json

import pytest

from fraudpipe.artifacts import METRICS_FILE, load_artifacts, library_versions
from security_tests.contract import HARDENED, LIVE, Evidence


@pytest.mark.assessment_context
def test_target_under_assessment_is_the_signed_model(request, trained, start_service, evidence):
    from security_tests.target import live_target

    target = live_target(request.config)
    if target is not None:
        health = start_service(LIVE).get("/health")
        evidence.record(Evidence(attack_succeeded=False, queries=1, summary=f"{target.url}: /health {health.status} {health.body}",
                                 details={"target": f"live service at {target.url} (black-box)",
                                          "live_health": health.body, "versions": library_versions()}))
        assert health.status == 200
        return
    loaded = load_artifacts(trained.artifacts_dir, trained.trusted_key)
    metrics = json.loads((trained.artifacts_dir / METRICS_FILE).read_text())
    health = start_service(HARDENED).get("/health")
    cm = metrics["confusion_matrix"]
    evidence.record(Evidence(
        attack_succeeded=False, queries=1,
        summary=f"model {loaded.model_sha256[:12]}, recall {metrics['recall']:.3f}, ROC-AUC {metrics['roc_auc']:.3f}",
        measurements={k: metrics[k] for k in ("precision", "recall", "roc_auc", "pr_auc", "test_rows")},
        charts=[{"kind": "confusion", "title": "Confusion matrix (held-out 20 %)", "cells": cm}],
        details={"target": "in-process Flask test client, profiles inherited and hardened",
                 "artifact_hashes": loaded.hashes, "signer_key_id": loaded.manifest["signer_key_id"],
                 "provenance": loaded.manifest["provenance"], "versions": library_versions(),
                 "model_metrics": {k: metrics[k] for k in ("precision", "recall", "roc_auc", "pr_auc", "test_rows")},
                 "confusion_matrix": cm, "hardened_health": health.body}))
    assert health.status == 200 and health.body["artifacts_verified"]
