"""A second service built apart from fraudpipe, with the parts a grey-box assessment reads: an insurance-claim
triage model that answers a numeric label.

Its request nests eight features under ``claim`` beside a constant ``channel``; its answer is
``{"results": [{"decision": 1, ...}]}`` (1: send the claim to an investigator). Besides the HTTP service it
has what an owner holds: a model folder (a pickle of the fitted weights and its metadata), a ``verify``
command that says whether it would serve a folder, an audit log (JSON lines) and a requirements file.
``weak`` is built the way inherited services are (no auth, no limit, the score in the answer, no audit log, a
verifier that only
checks file names and loads the pickle to see that it loads, world-writable files with a key left in them);
``strong`` checks a bearer key, limits per key and per address, hides the score, logs one record per
request with the peer address, and verifies an HMAC-signed manifest of the folder before anything in it is
unpickled. No fraudpipe import: this is how the assessment meets someone else's service.

    python -m tests.targets.claims_service build-model FOLDER --build strong   # CLAIMS_SIGNING_KEY=FILE
    python -m tests.targets.claims_service verify FOLDER --build strong
    python -m tests.targets.claims_service serve --port 8000 --build strong --model FOLDER --log FILE
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import os
import pickle
import stat
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from tests.targets.strict import SlidingWindow, strict_json, typed_row

if TYPE_CHECKING:  # imported where used: ``verify`` runs once per tampered copy and needs none of them
    from flask import Flask, Response

FIELDS = {"amount": ("float", 0.0, 100_000.0), "claimant_age": ("int", 18, 99), "policy_years": ("int", 0, 40),
          "prior_claims": ("int", 0, 20), "days_to_report": ("int", 0, 365), "vehicle_value": ("float", 0.0, 200_000.0),
          "witnesses": ("int", 0, 10), "police_report": ("bool", 0, 1)}
SCALE = (10_000, 10, 10, 1, 30, 10_000, 1, 1)
MODEL_FILE, META_FILE, MANIFEST_FILE = "model.pkl", "meta.json", "manifest.json"
MAX_BODY = 4096


def train() -> tuple[list[float], float]:
    """Investigation is likelier for large claims reported late, with prior claims and no police report: a
    logistic regression fitted by gradient descent on scaled features (weights, intercept)."""
    import numpy as np

    rng = np.random.default_rng(11)
    n = 4_000
    X = np.column_stack([rng.gamma(2.0, 6_000, n).clip(0, 100_000), rng.integers(18, 90, n), rng.integers(0, 30, n),
                         rng.poisson(1.0, n).clip(0, 20), rng.gamma(1.5, 15, n).clip(0, 365),
                         rng.gamma(3.0, 8_000, n).clip(0, 200_000), rng.poisson(1.0, n).clip(0, 10),
                         rng.binomial(1, 0.5, n)]).astype(float)
    risk = (0.00012 * X[:, 0] + 0.6 * X[:, 3] + 0.03 * X[:, 4] - 0.05 * X[:, 2] - 0.3 * X[:, 6] - 1.2 * X[:, 7]
            + rng.normal(0, 0.4, n))
    y = (risk > np.quantile(risk, 0.7)).astype(float)
    Z = X / np.array(SCALE)
    weights, intercept = np.zeros(Z.shape[1]), 0.0
    for _ in range(3_000):
        error = 1.0 / (1.0 + np.exp(-(Z @ weights + intercept))) - y
        weights -= 0.05 * Z.T @ error / n
        intercept -= 0.05 * error.mean()
    return weights.tolist(), float(intercept)


def _signing_key() -> bytes:
    return Path(os.environ["CLAIMS_SIGNING_KEY"]).read_bytes().strip()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_mac(files: dict) -> str:
    return hmac.new(_signing_key(), json.dumps(files, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def build_model(folder: Path, build: str) -> None:
    """The release: a pickle and its metadata; strong adds a signed manifest and leaves every file read-only,
    weak leaves them world-writable with a deploy key beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    coef, intercept = train()
    weights = {"coef": coef, "intercept": intercept, "scale": list(SCALE)}
    (folder / MODEL_FILE).write_bytes(pickle.dumps(weights))
    (folder / META_FILE).write_text(json.dumps({"name": "claims-triage", "version": "3.1", "features": list(FIELDS)}))
    if build == "strong":
        files = {p.name: _digest(p) for p in sorted(folder.iterdir())}
        (folder / MANIFEST_FILE).write_text(json.dumps({"files": files, "mac": _manifest_mac(files)}))
        for path in folder.iterdir():
            path.chmod(0o444)
    else:
        (folder / "deploy_key.pem").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n"
                                               "-----END OPENSSH PRIVATE KEY-----\n")
        for path in folder.iterdir():
            path.chmod(0o666)


def verify(folder: Path, build: str) -> str | None:
    """None when the service would serve ``folder``, else why not. Strong: only regular files, exactly those the
    manifest names, each with its digest, the manifest's MAC good; nothing is unpickled. Weak: the expected
    names exist, and the pickle loads (which runs whatever it holds)."""
    if build != "strong":
        if not all((folder / name).exists() for name in (MODEL_FILE, META_FILE)):
            return "a model file is missing"
        with open(folder / MODEL_FILE, "rb") as handle:
            pickle.load(handle)  # noqa: S301 -- the weak build's mistake, on purpose
        return None
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        files = manifest["files"]
        if not hmac.compare_digest(str(manifest["mac"]), _manifest_mac(files)):
            return "the manifest's MAC does not verify"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"no valid manifest: {exc}"
    entries = {p.name: p for p in folder.iterdir()}
    if set(entries) != set(files) | {MANIFEST_FILE}:
        return f"files differ from the manifest: {sorted(set(entries) ^ (set(files) | {MANIFEST_FILE}))}"
    for name, path in entries.items():
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return f"{name} is not a regular file"
        if name != MANIFEST_FILE and not hmac.compare_digest(_digest(path), files[name]):
            return f"{name} differs from the manifest"
    return None


def _refuse(status: int, reason: str) -> Response:
    from flask import jsonify

    response = jsonify({"error": reason})
    response.status_code = status
    if status == 429:
        response.headers["Retry-After"] = "60"
    return response


def _row(body: object, charset: str | None) -> list[float] | str:
    """The strong build's parser: exactly ``{"claim": {eight typed fields in range}, "channel": "api"}``."""
    body = strict_json(body, charset)
    if not isinstance(body, dict) or set(body) != {"claim", "channel"} or body["channel"] != "api":
        return "expected {claim: {...}, channel: api}"
    return typed_row(body["claim"], FIELDS)


def create_app(build: str, model_folder: Path, log: Path | None) -> Flask:
    from flask import Flask, jsonify, request

    strong = build == "strong"
    if strong and verify(model_folder, build) is not None:
        raise SystemExit(f"refusing to serve {model_folder}: {verify(model_folder, build)}")
    with open(model_folder / MODEL_FILE, "rb") as handle:
        model = pickle.load(handle)  # noqa: S301 -- verified above (strong); the weak build trusts its folder
    keys = [k for k in os.environ.get("CLAIMS_API_KEYS", "").split(",") if k]
    limit = int(os.environ.get("CLAIMS_RATE_LIMIT", "30"))
    per_key, per_address = SlidingWindow(limit, 60.0), SlidingWindow(limit, 60.0)
    lock = threading.Lock()
    app = Flask("claims_service")

    @app.after_request
    def audit(response):
        if strong and log is not None:
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            record = {"time": datetime.now(timezone.utc).isoformat(), "method": request.method, "path": request.path,
                      "http": {"status": response.status_code}, "peer": {"address": request.remote_addr},
                      "key_id": hashlib.sha256(token.encode()).hexdigest()[:12] if token else None}
            with lock, open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        return response

    @app.get("/health")
    def health():
        return jsonify({"status": "up"})

    @app.post("/claims/triage")
    def triage():
        if strong:
            if per_address.allow(request.remote_addr or "-"):
                return _refuse(429, "too many requests")
            presented = request.headers.get("Authorization", "")
            token = presented.removeprefix("Bearer ") if presented.startswith("Bearer ") else ""
            if not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
                return _refuse(401, "a bearer key is required")
            if per_key.allow(token):
                return _refuse(429, "too many requests")
            if request.mimetype != "application/json":
                return _refuse(415, "send JSON")
            if (request.content_length or 0) > MAX_BODY:
                return _refuse(413, "body too large")
            row = _row(request.get_data(), request.mimetype_params.get("charset"))
            if isinstance(row, str):
                return _refuse(422, row)
        else:
            claim = request.get_json(force=True)["claim"]
            row = [float(claim[name]) for name in FIELDS]  # a KeyError is a 500, as inherited
        z = sum(v / s * w for v, s, w in zip(row, model["scale"], model["coef"])) + model["intercept"]
        p = 1.0 / (1.0 + math.exp(-z))
        result = {"decision": int(p >= 0.5), "model": "claims-triage-3.1"}
        if not strong:
            result["risk"] = round(p, 4)
        return jsonify({"results": [result]})

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("build-model", "verify", "serve"))
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--build", choices=("weak", "strong"), default="weak")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build-model":
        build_model(args.folder, args.build)
        return 0
    if args.command == "verify":
        refusal = verify(args.folder, args.build)
        print(refusal or "ok", file=sys.stderr)
        return 1 if refusal else 0
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", args.port, create_app(args.build, args.model, args.log), threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
