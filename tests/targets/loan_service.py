"""A model service that is not fraudpipe, written only so the assessment can be tried on another target.

A loan-default scorer: other field names, a logistic regression instead of a forest, ``Authorization:
Bearer`` keys, and a nested answer (``{"result": {"decision": ..., "score": ...}}``). ``weak`` is built
the way inherited services tend to be (no auth, score in the answer, no limit, lax parsing that fails
with a 500); ``strong`` has every control the assessment checks. Start it under gunicorn with
``tests.targets.loan_service:create_app('weak')``; keys and the limit come from LOAN_* variables.
"""

from __future__ import annotations

import hmac
import math
import os

import numpy as np
from flask import Flask, jsonify, request
from sklearn.linear_model import LogisticRegression

from tests.targets.strict import SlidingWindow, strict_json, typed_row

FIELDS = {"income": ("float", 0.0, 500_000.0), "age": ("int", 18, 100), "open_accounts": ("int", 0, 50),
          "is_new_customer": ("bool", 0, 1)}


def _model() -> LogisticRegression:
    """Default is likelier with low income, many open accounts and a new relationship."""
    rng = np.random.default_rng(7)
    n = 4_000
    X = np.column_stack([rng.gamma(2.0, 30_000, n).clip(0, 500_000), rng.integers(18, 90, n),
                         rng.poisson(5, n).clip(0, 50), rng.binomial(1, 0.3, n)]).astype(float)
    risk = -0.00005 * X[:, 0] + 0.35 * X[:, 2] + 1.2 * X[:, 3] - 0.01 * X[:, 1] + rng.normal(0, 0.5, n)
    y = (risk > np.quantile(risk, 0.8)).astype(int)
    return LogisticRegression(max_iter=2_000).fit(X / [100_000, 100, 10, 1], y)


def _error(status: int, reason: str, headers: dict | None = None):
    response = jsonify({"error": {"code": status, "message": reason}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


BUILDS = ("weak", "strong", "strong-query-token", "strong-lax-json")


def create_app(build: str = "weak") -> Flask:
    """``strong-query-token`` is ``strong`` that also takes its token as ``?token=``, a convenience written
    apart from the header check: the front door the assessment must still find open. ``strong-lax-json``
    is ``strong`` reading bodies with Flask's own JSON (duplicate keys, BOMs, UTF-16/32 and a declared
    charset all accepted): strict fields behind a parser that picks one reading of an ambiguous body."""
    if build not in BUILDS:
        raise ValueError(f"build must be one of {', '.join(BUILDS)}, got {build!r}")
    strong = build.startswith("strong")
    model = _model()
    keys = [k for k in os.environ.get("LOAN_API_KEYS", "").split(",") if k]
    limit = int(os.environ.get("LOAN_RATE_LIMIT", "30"))
    per_key, per_address = SlidingWindow(limit, 60.0), SlidingWindow(limit, 60.0)
    app = Flask("loan_service")

    @app.get("/health")
    def health():
        return jsonify({"status": "up"})

    @app.post("/v2/score")
    def score():
        if strong:
            wait = per_address.allow(request.remote_addr or "-")
            if wait:
                return _error(429, "too many requests", {"Retry-After": str(math.ceil(wait))})
            presented = request.headers.get("Authorization", "")
            token = presented.removeprefix("Bearer ") if presented.startswith("Bearer ") else ""
            if build == "strong-query-token" and not token:
                token = request.args.get("token", "")
            if not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
                return _error(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
            wait = per_key.allow(token)
            if wait:
                return _error(429, "too many requests", {"Retry-After": str(math.ceil(wait))})
            if request.mimetype != "application/json" or (request.content_length or 0) > 2048:
                return _error(415 if request.mimetype != "application/json" else 413, "send a small JSON body")
            if build == "strong-lax-json":
                body = request.get_json(silent=True)
            else:
                body = strict_json(request.get_data(), request.mimetype_params.get("charset"))
            row = typed_row(body, FIELDS)
            if isinstance(row, str):
                return _error(422, row)
        else:
            body = request.get_json(force=True)
            row = [float(body[name]) for name in FIELDS]  # a KeyError or ValueError is a 500, as inherited
        p = float(model.predict_proba(np.array([row]) / [100_000, 100, 10, 1])[0, 1])
        result = {"decision": "DENY" if p >= 0.5 else "APPROVE", "model": "lr-2024-03"}
        if not strong:
            result["score"] = round(p, 4)
        return jsonify({"request_id": os.urandom(6).hex(), "result": result})

    return app
