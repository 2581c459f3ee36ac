"""What was assessed: the model, its artifacts and the software, recorded for the report's cover and scope."""

import json

import pytest

from fraudpipe.artifacts import METRICS_FILE, load_artifacts, library_versions
from security_tests.contract import HARDENED, Evidence


def _live_context(request, target, evidence) -> None:
    """What was assessed when the model is someone else's: the profile, the plan, nothing about training."""
    from security_tests.attacks.client import HttpClient
    from security_tests.reach import need_of
    from security_tests.target import planned

    profile = target.profile
    planned(target, request.session.items, lambda item: need_of(item, profile))
    inside = [f"[{name}]" for name in ("audit", "artifacts", "environment") if getattr(profile, name) is not None]
    mode = f"grey-box over HTTP (the profile names {', '.join(inside)})" if inside else "black-box over HTTP"
    health = HttpClient(target.url, profile=profile).get(profile.health_path) if profile.health_path else None
    evidence.record(Evidence(
        attack_succeeded=False, queries=1 if health else 0,
        summary=f"{profile.name} at {target.url}: " + (f"{profile.health_path} {health.status}" if health
                                                       else "no health path in the profile"),
        details={"target": f"{profile.name} at {target.url} ({mode.split(' (')[0]})", "target_name": profile.name,
                 "target_url": target.url, "profile_source": profile.source, "mode": mode,
                 **({"grey_box": {key: value for key, value in (
                     ("audit log", profile.audit and str(profile.audit.log)),
                     ("model folder", profile.artifacts and str(profile.artifacts.folder)),
                     ("verify command", profile.artifacts and " ".join(profile.artifacts.verify)),
                     ("requirements", profile.environment and str(profile.environment.requirements)),
                     ("interpreter", profile.environment and str(profile.environment.python))) if value}}
                    if inside else {}),
                 "trained_in_this_run": False, "api_keys_given": len(target.api_keys),
                 "promised_limit": (f"{profile.rate_limit} per {profile.rate_window}" if profile.rate_limit
                                    else "none stated"),
                 "fields": [f.name for f in profile.fields], "predict_path": profile.predict_path,
                 "label_path": ".".join(profile.label_path), "positive_label": profile.positive,
                 "budget_plan": target.plan.as_dict() if target.plan else {},
                 "live_health": {"status": health.status, "body": health.body} if health else None,
                 "versions": library_versions()}))
    assert health is None or health.status < 500, f"{profile.health_path} answered {health.status}"


@pytest.mark.assessment_context
def test_target_under_assessment_is_the_signed_model(request, assessor_key, evidence):
    from security_tests.target import live_target

    target = live_target(request.config)
    if target is not None:
        return _live_context(request, target, evidence)
    trained = request.getfixturevalue("trained")
    loaded = load_artifacts(trained.artifacts_dir, trained.trusted_key)
    metrics = json.loads((trained.artifacts_dir / METRICS_FILE).read_text())
    health = request.getfixturevalue("start_service")(HARDENED).get("/health", headers={"X-API-Key": assessor_key})
    cm = metrics["confusion_matrix"]
    evidence.record(Evidence(
        attack_succeeded=False, queries=1,
        summary=f"model {loaded.model_sha256[:12]}, recall {metrics['recall']:.3f}, ROC-AUC {metrics['roc_auc']:.3f}",
        measurements={k: metrics[k] for k in ("precision", "recall", "roc_auc", "pr_auc", "test_rows")},
        charts=[{"kind": "confusion", "title": "Confusion matrix (held-out 20 %)", "cells": cm}],
        details={"target": "in-process Flask test client, profiles inherited and hardened",
                 "mode": "in-process, trained in this run", "trained_in_this_run": True,
                 "target_name": "fraudpipe (built and trained in this run)",
                 "artifact_hashes": loaded.hashes, "signer_key_id": loaded.manifest["signer_key_id"],
                 "provenance": loaded.manifest["provenance"], "versions": library_versions(),
                 "model_metrics": {k: metrics[k] for k in ("precision", "recall", "roc_auc", "pr_auc", "test_rows")},
                 "confusion_matrix": cm, "hardened_health": health.body}))
    assert health.status == 200 and health.body["artifacts_verified"]
