"""The one error type a control raises, and the handlers that turn every error into a JSON answer.

No error, raised by a control, by Werkzeug or by a bug, leaves the service as HTML or a stack trace.
"""

from __future__ import annotations

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    def __init__(self, status: int, error: str, reason: str, details: dict | None = None,
                 headers: dict | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.error, "reason": self.reason, **self.details}


def http_error_response(exc: HTTPException):
    g.reason = exc.description
    response = jsonify({"error": exc.name.lower().replace(" ", "_"), "reason": exc.description})
    response.status_code = exc.code or 500
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def api_error_response(exc: ApiError):
    g.reason = exc.reason
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def install_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, api_error_response)

    @app.errorhandler(Exception)
    def any_error(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error_response(exc)
        g.reason = f"internal error: {type(exc).__name__}"
        app.logger.error("request %s failed: %s: %s", getattr(g, "request_id", "-"), type(exc).__name__, exc)
        return jsonify({"error": "internal_error", "reason": "the request could not be processed",
                        "request_id": getattr(g, "request_id", None)}), 500
