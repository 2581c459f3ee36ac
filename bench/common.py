"""Shared benchmark helpers: a trained folder in a temp dir, the seed's own service, medians."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
from flask import Flask, jsonify, request

from fraudpipe.data import FEATURE_NAMES, FRAUD_EXAMPLE, Recipe
from fraudpipe.pipeline import train
from fraudpipe.settings import Settings

TRANSACTION = FRAUD_EXAMPLE


def trained_settings(api_key: str = "bench-key-4f9Qz7LmXw", rows: int = 10_000) -> Settings:
    root = Path(tempfile.mkdtemp(prefix="fraudpipe-bench-"))
    settings = Settings(artifacts_dir=root / "model", signing_key=root / "keys" / "s.pem",
                        trusted_key=root / "keys" / "t.pub", api_keys=(api_key,),
                        audit_log=root / "audit.jsonl", rate_limit="100000000/minute")
    train(settings, recipe=Recipe(n_rows=rows), progress=lambda _: None)
    return settings


def seed_app(artifacts_dir: Path) -> Flask:
    """The acquired service's /predict exactly as written in the seed: predict, then predict_proba,
    on a forest with n_jobs=-1 (as it was trained and saved there)."""
    model = joblib.load(artifacts_dir / "fraud_model.pkl")
    model.set_params(n_jobs=-1)
    scaler = joblib.load(artifacts_dir / "scaler.pkl")
    app = Flask("seed")

    @app.route("/health")
    def health():
        return jsonify({"status": "ok"})

    @app.route("/predict", methods=["POST"])
    def predict():
        data = request.get_json()
        missing = [f for f in FEATURE_NAMES if f not in data]
        if missing:
            return jsonify({"error": f"Missing fields: {missing}"}), 400
        features = np.array([[data[f] for f in FEATURE_NAMES]])
        features_scaled = scaler.transform(features)
        prediction = model.predict(features_scaled)[0]
        probability = model.predict_proba(features_scaled)[0][1]
        return jsonify({"prediction": int(prediction), "label": "FRAUD" if prediction == 1 else "LEGITIMATE",
                        "fraud_probability": round(float(probability), 4)})

    return app


def median_seconds(call, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def seed_app_from_env() -> Flask:
    """gunicorn factory for the seed baseline: reads the artifact folder from the settings' environment."""
    return seed_app(Settings.from_env().artifacts_dir)


def bare_app():
    """granian factory: the least a WSGI app can do (read the body, answer two bytes): the server's ceiling."""

    def app(environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    return app


def hello_app() -> Flask:
    """granian factory: Flask's own floor for a JSON POST (``get_json``, ``jsonify``), no model, no control."""
    app = Flask("hello")

    @app.post("/predict")
    def predict():
        return jsonify({"received": len(request.get_json())})

    @app.get("/health")
    def health():
        return jsonify({"status": "ok"})

    return app


def hardened_per_worker_monitor_app():
    """granian RSGI factory: serve's front and hardened app, the monitor's state kept in each worker (what
    the shared monitor state costs is this row against serve's hardened row)."""
    from fraudpipe.serving.app import create_app
    from fraudpipe.serving.front import front_for

    app = create_app("hardened", shared_monitor=False)
    return front_for(app, app.extensions["fraudpipe"].settings, validated=True)
