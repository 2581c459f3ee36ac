"""The one error type a control raises, and how every error becomes a JSON answer.

No error, raised by a control, by Werkzeug or by a bug, leaves the service as HTML or a stack trace.
``error_answer`` is the one translation; Flask's handlers and the direct ``/predict`` route both use it.
"""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("fraudpipe")


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


def error_answer(exc: Exception, context) -> tuple[int, dict, dict]:
    """Status, JSON body and headers for any error; the reason goes on the request's ``context`` for the
    audit record, and a bug is logged with the request id (never shown beyond it)."""
    if isinstance(exc, ApiError):
        context.reason = exc.reason
        return exc.status, exc.body(), exc.headers
    if isinstance(exc, HTTPException):
        context.reason = exc.description
        headers = {}
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        return exc.code or 500, {"error": exc.name.lower().replace(" ", "_"), "reason": exc.description}, headers
    request_id = getattr(context, "request_id", None)
    context.reason = f"internal error: {type(exc).__name__}"
    log.error("request %s failed: %s: %s", request_id or "-", type(exc).__name__, exc)
    return 500, {"error": "internal_error", "reason": "the request could not be processed",
                 "request_id": request_id}, {}


def json_response(answer: tuple[int, dict, dict]):
    """A Flask response for a (status, JSON body, headers) answer."""
    status, body, headers = answer
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def error_response(exc: Exception):
    return json_response(error_answer(exc, g._get_current_object()))


def install_error_handlers(app: Flask) -> None:
    app.register_error_handler(Exception, error_response)
