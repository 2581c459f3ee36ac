"""The app factory: one profile, six switchable controls, composed from their own modules.

``inherited`` is the service as acquired (every control off); ``hardened`` turns every control on;
any control can be switched off alone (``create_app("hardened", auth=False)``) so the assessment can
show that *that* control is what blocks *that* attack.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from fraudpipe.errors import ConfigError
from fraudpipe.serving import auth as auth_control
from fraudpipe.serving import limits, openapi, validation
from fraudpipe.serving.audit import AuditLog
from fraudpipe.serving.errors import ApiError
from fraudpipe.serving.model_service import ModelService
from fraudpipe.serving.monitor import QueryMonitor
from fraudpipe.settings import Settings


@dataclass(frozen=True)
class Controls:
    auth: bool = True
    hide_probability: bool = True
    rate_limit: bool = True
    verify_artifacts: bool = True
    validate_input: bool = True
    audit_log: bool = True
    monitor: bool = True


CONTROL_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Controls))
PROFILES: dict[str, Controls] = {
    "hardened": Controls(),
    "inherited": Controls(**dict.fromkeys(CONTROL_NAMES, False)),
}


def resolve_controls(profile: str, overrides: dict[str, bool]) -> Controls:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose {' or '.join(PROFILES)}")
    return Controls(**{**asdict(PROFILES[profile]), **overrides})


def create_app(profile: str = "hardened", settings: Settings | None = None, **overrides) -> Flask:
    """Build the service. Overrides name controls (``auth=False``) or settings (``rate_limit="5/minute"``).

    A control takes a bool; ``rate_limit`` is both a control and a setting, so a string there is the limit.
    """
    control_overrides = {name: overrides.pop(name) for name in list(overrides)
                         if name in CONTROL_NAMES and isinstance(overrides[name], bool)}
    controls = resolve_controls(profile, control_overrides)
    settings = (settings or Settings.from_env()).with_overrides(**overrides)

    app = Flask("fraudpipe")
    app.config.update(DEBUG=False, PROPAGATE_EXCEPTIONS=False, MAX_CONTENT_LENGTH=None)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)
    service = ModelService.load(settings, verify=controls.verify_artifacts)
    keys = auth_control.KeyStore.from_settings(settings.api_keys, settings.api_keys_file) if controls.auth else None
    audit = AuditLog(settings.audit_log) if controls.audit_log and settings.audit_log else None
    monitor = QueryMonitor(block=settings.monitor_block) if controls.monitor else None
    app.extensions["fraudpipe"] = {"profile": profile, "controls": controls, "settings": settings,
                                   "model": service, "audit": audit, "monitor": monitor}

    @app.before_request
    def begin() -> None:
        g.request_id = uuid.uuid4().hex
        g.started = time.perf_counter()
        g.key_id = None
        if keys is not None and request.endpoint == "predict":
            g.key_id = keys.require(request.headers.get(auth_control.HEADER))
        if monitor is not None and request.endpoint == "predict":
            identity = QueryMonitor.identity({"key_id": g.key_id, "client": request.remote_addr})
            if monitor.is_blocked(identity):
                raise ApiError(403, "blocked", "this client was flagged for probing; contact the service owner")

    limiter = None
    if controls.rate_limit:
        limiter = limits.install_limiter(app, settings.rate_limit_storage)

    def predict():
        if not service.ready:
            raise ApiError(503, "not_ready", f"model not loaded: {service.reason}")
        if controls.validate_input:
            row = validation.parse_strict(request, settings.max_body_bytes)
        else:
            row = validation.parse_lax(request)
        label, probability = service.predict(row)
        g.features, g.prediction, g.probability = row[0].tolist(), label, probability
        body = {"prediction": label, "label": "FRAUD" if label == 1 else "LEGITIMATE"}
        if not controls.hide_probability:
            body["fraud_probability"] = round(probability, 4)
        return jsonify(body)

    if limiter is not None:
        predict = limits.limit_route(limiter, settings.rate_limit, predict, per_key=controls.auth)
    app.add_url_rule("/predict", "predict", predict, methods=["POST"])

    @app.get("/health")
    def health():
        body = {"status": "ok" if service.ready else "not ready", "ready": service.ready,
                "profile": profile, "artifacts_verified": service.verified,
                "model_sha256_prefix": service.model_sha256[:12] or None}
        if not service.ready:
            body["reason"] = service.reason
        return jsonify(body), 200 if service.ready else 503

    @app.get("/openapi.json")
    def openapi_document():
        return jsonify(openapi.document(controls))

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        g.reason = exc.reason
        response = jsonify(exc.body())
        response.status_code = exc.status
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(Exception)
    def any_error(exc: Exception):
        if isinstance(exc, HTTPException):
            g.reason = exc.description
            response = jsonify({"error": exc.name.lower().replace(" ", "_"), "reason": exc.description})
            response.status_code = exc.code or 500
            if exc.code == 405 and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            if exc.code == 429 and limiter is not None:
                response.headers["Retry-After"] = str(limits.retry_after(limiter))
            return response
        g.reason = f"internal error: {type(exc).__name__}"
        app.logger.error("request %s failed: %s: %s", getattr(g, "request_id", "-"), type(exc).__name__, exc)
        return jsonify({"error": "internal_error", "reason": "the request could not be processed",
                        "request_id": getattr(g, "request_id", None)}), 500

    @app.after_request
    def finish(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers["X-Request-ID"] = request_id
        if audit is not None or monitor is not None:
            record = audit_record(response)
            alerts = monitor.observe(record) if monitor is not None else []
            if audit is not None:
                audit.write(record)
                for alert in alerts:
                    audit.write({"ts": record["ts"], "request_id": record["request_id"], **alert})
            for alert in alerts:
                app.logger.warning("monitor alert: %s", alert)
        return response

    return app


def audit_record(response) -> dict:
    """What a SIEM needs to reconstruct a probing campaign: who, when, what was asked and answered."""
    record = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "request_id": getattr(g, "request_id", None),
        "client": request.remote_addr,
        "key_id": getattr(g, "key_id", None),
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "features": getattr(g, "features", None),
        "prediction": getattr(g, "prediction", None),
        "probability": getattr(g, "probability", None),
        "reason": getattr(g, "reason", None),
        "latency_ms": round((time.perf_counter() - g.started) * 1000, 3) if "started" in g else None,
    }
    return record
