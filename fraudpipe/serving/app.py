"""The app factory: a profile is a set of controls, and each control installs itself.

``inherited`` is the service as acquired (no control); ``hardened`` installs every control; any one can
be left out (``create_app("hardened", controls_off={"auth"})``) so the assessment can show that *that*
control is what blocks *that* attack. Values (the limit, the key list) live in ``Settings``, never here.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, g, jsonify, request

from fraudpipe.errors import ConfigError
from fraudpipe.serving import audit, auth, limits, monitor, openapi, output, validation
from fraudpipe.serving.errors import install_error_handlers, json_response
from fraudpipe.serving.model_service import ModelService
from fraudpipe.serving.predict_route import PredictRoute, security_headers
from fraudpipe.serving.proxies import trust_proxies
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
    # Flask gives its logger ("fraudpipe", which the controls log to) a console handler on first use.
    app.logger.debug("building the %s profile", profile)
    model = ModelService.load(settings, verify="verify_artifacts" in controls)
    service = Service(profile=profile, controls=controls, settings=settings, model=model,
                      shared_monitor=shared_monitor, host_monitor=host_monitor)
    app.extensions["fraudpipe"] = service
    app.before_request(lambda: service.begin(request._get_current_object(), g._get_current_object()))
    for name, install in INSTALLERS.items():
        if install is not None and name in controls:
            install(app, service)
    _add_routes(app, service)
    install_error_handlers(app)
    app.after_request(lambda response: _finish(service, response))
    app.wsgi_app = PredictRoute(service, app.wsgi_app)
    if settings.trusted_proxies:
        app.wsgi_app = trust_proxies(app.wsgi_app, settings.trusted_proxies)
    return app


def _add_routes(app: Flask, service: Service) -> None:
    # POST /predict is answered by ``predict_route`` before Flask sees it; this rule names the endpoint for
    # Flask's routing (405 with ``Allow: POST`` for other methods) and serves any caller that reaches Flask.
    # No automatic OPTIONS: Flask would answer it 200 with an empty HTML body; here it is a JSON 405.
    app.add_url_rule("/predict", "predict", lambda: jsonify(service.answer(request._get_current_object(),
                                                                           g._get_current_object())),
                     methods=["POST"], provide_automatic_options=False)
    app.add_url_rule("/health", "health", lambda: service.health(request), methods=["GET"],
                     provide_automatic_options=False)
    app.add_url_rule("/openapi.json", "openapi", lambda: jsonify(openapi.document(service.controls)),
                     methods=["GET"], provide_automatic_options=False)


def _finish(service: Service, response):
    asked, context = request._get_current_object(), g._get_current_object()
    replaced = service.settle(response.status_code, asked, context)
    if replaced is not None:
        response = json_response(replaced)
    response.headers.update(security_headers(context))
    return response
