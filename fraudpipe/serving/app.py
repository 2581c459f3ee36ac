"""The app factory: a profile is a set of controls, and each control installs itself.

``inherited`` is the service as acquired (no control); ``hardened`` installs every control; any one can
be left out (``create_app("hardened", controls_off={"auth"})``) so the assessment can show that *that*
control is what blocks *that* attack. Values (the limit, the key list) live in ``Settings``, never here.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

from flask import Flask, g, jsonify, request

from fraudpipe.errors import ConfigError
from fraudpipe.serving import audit, auth, limits, monitor, openapi, output, validation
from fraudpipe.serving.proxies import trust_proxies
from fraudpipe.serving.errors import ApiError, api_error_response, install_error_handlers
from fraudpipe.serving.front import BODY_TIMED_OUT
from fraudpipe.serving.model_service import ModelService
from fraudpipe.serving.service import Service
from fraudpipe.settings import Settings

# Installation order is request order: whether the caller is over its budget (before auth, so guessing
# keys is limited too), who is asking, whether they are blocked; then how the body is read, what the
# answer shows, and where the record goes.
INSTALLERS = {
    "rate_limit": limits.install,
    "auth": auth.install,
    "monitor": monitor.install,
    "validate_input": validation.install,
    "hide_probability": output.install,
    "audit_log": audit.install,
    "verify_artifacts": None,  # a loading option: ModelService.load(verify=...)
}
CONTROL_NAMES: tuple[str, ...] = tuple(INSTALLERS)
PROFILES: dict[str, frozenset[str]] = {"hardened": frozenset(CONTROL_NAMES), "inherited": frozenset()}


def resolve_controls(profile: str, controls_off: Iterable[str] = ()) -> frozenset[str]:
    """The controls a profile installs, less those switched off; unknown names are refused."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose {' or '.join(PROFILES)}")
    off = frozenset(controls_off)
    unknown = off - set(CONTROL_NAMES)
    if unknown:
        raise ConfigError(f"unknown control(s) {', '.join(sorted(unknown))}; choose from {', '.join(CONTROL_NAMES)}")
    return PROFILES[profile] - off


def create_app(profile: str = "hardened", settings: Settings | None = None,
               controls_off: Iterable[str] = (), shared_monitor: bool = True, host_monitor=None) -> Flask:
    """Build the service: the core routes, then each installed control in request order.
    ``shared_monitor=False`` keeps the monitor's state in each worker even with Redis storage: only the
    assessment uses it, to show that per-worker state lets a spread-out sweep through. ``host_monitor`` is
    the state ``serve`` shares between the workers of its host (``monitor_host``); without it, with Redis
    storage, every answer is ordered through Redis."""
    controls = resolve_controls(profile, controls_off)
    settings = settings or Settings.from_env()
    app = Flask("fraudpipe", static_folder=None)  # no static route: every served path is documented
    app.config.update(DEBUG=False, PROPAGATE_EXCEPTIONS=False, MAX_CONTENT_LENGTH=None)
    if settings.trusted_proxies:
        app.wsgi_app = trust_proxies(app.wsgi_app, settings.trusted_proxies)
    model = ModelService.load(settings, verify="verify_artifacts" in controls)
    service = Service(profile=profile, controls=controls, settings=settings, model=model,
                      shared_monitor=shared_monitor, host_monitor=host_monitor)
    app.extensions["fraudpipe"] = service
    app.before_request(lambda: _begin(service))
    for name, install in INSTALLERS.items():
        if install is not None and name in controls:
            install(app, service)
    _add_routes(app, service)
    install_error_handlers(app)
    app.after_request(lambda response: _finish(service, response))
    return app


def _begin(service: Service) -> None:
    asked, context = request._get_current_object(), g._get_current_object()
    context.request_id = uuid.uuid4().hex
    context.started = time.perf_counter()
    context.key_id = None
    if asked.environ.get(BODY_TIMED_OUT):
        raise ApiError(408, "request_timeout", "the request body did not arrive in time; send it at once")
    for check in service.checks:
        check(asked, context)


def _add_routes(app: Flask, service: Service) -> None:
    def predict():
        row = service.predict_row(request._get_current_object())
        label, probability = service.model.predict(row)
        context = g._get_current_object()
        context.features, context.prediction, context.probability = row[0].tolist(), label, probability
        return jsonify(service.render(label, probability))

    app.add_url_rule("/predict", "predict", service.wrap_predict(predict), methods=["POST"])
    app.add_url_rule("/health", "health", lambda: service.health(request), methods=["GET"])
    app.add_url_rule("/openapi.json", "openapi", lambda: jsonify(openapi.document(service.controls)),
                     methods=["GET"])


def _finish(service: Service, response):
    """Security headers and the record; an answer that cannot be recorded (a full disk) is not given: 503."""
    asked, context = request._get_current_object(), g._get_current_object()
    for gate in service.answer_gates:
        try:
            response = gate(response, asked, context)
        except ApiError as exc:
            response = api_error_response(exc)
    if service.sinks:
        records = [audit.request_record(response)]
        try:
            for sink in service.sinks:
                records.extend(sink(records))
        except OSError as exc:
            logging.getLogger("fraudpipe").error("request %s not recorded: %s", records[0]["request_id"], exc.strerror)
            response = jsonify({"error": "not_ready", "reason": "the request could not be recorded; try again later"})
            response.status_code = 503
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    request_id = getattr(context, "request_id", None)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response
