"""``POST /predict`` answered without Flask's request machinery, by the same controls in the same order.

The model call is the service's hot path, and on it Flask's per-request work (contexts, signals, URL
matching, response objects) cost more than the model and every control together. This route answers
exactly ``POST /predict`` itself: the request object is Flask's own (so the body, headers, media type and
the acquired service's ``get_json`` read the same), and ``Service.begin``, ``Service.answer`` and
``Service.settle`` are the code Flask's hooks run. Every other request, ``/predict`` with another
method included, goes to Flask unchanged. The assessment's in-process client and ``serve`` both come in
through here, so what the assessment attacks is what production serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import orjson
from flask import Request
from werkzeug.http import HTTP_STATUS_CODES

from fraudpipe.serving.errors import error_answer

PATH = "/predict"


class _Asked(Request):
    endpoint = "predict"  # Flask would find it by matching the URL; this route only ever serves one


class _Context:
    """What Flask's ``g`` holds for a request on Flask's routes; attributes the view never set read None."""

    row = features = prediction = probability = reason = monitor_alerts = None


def security_headers(context) -> dict[str, str]:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    request_id = getattr(context, "request_id", None)
    if request_id:
        headers["X-Request-ID"] = request_id
    return headers


def json_bytes(body: dict) -> bytes:
    """What Flask's ``jsonify`` writes (sorted keys, ASCII, compact, a final newline), byte for byte: by
    orjson when the body is printable ASCII, which every answer but an error quoting a caller's text is."""
    try:
        payload = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        if payload.isascii() and b"\x7f" not in payload:  # the standard library escapes DEL too
            return payload
    except TypeError:
        pass
    return (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode()


class PredictRoute:
    """WSGI middleware in front of Flask: the one route it serves, then Flask for the rest."""

    def __init__(self, service, flask_wsgi: Callable) -> None:
        self.service = service
        self.flask_wsgi = flask_wsgi
        self._routable_as = None

    def _routable(self, asked) -> bool:
        """Whether Flask's URL matching would reach the view: a request it refuses before routing (a Host
        that is no valid name, a WebSocket scheme) goes to Flask, which answers it as it always has. The
        environ values werkzeug builds the host from are remembered once they passed, so the usual request
        (the same Host as the last) costs a tuple comparison."""
        environ = asked.environ
        seen = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
                environ.get("SERVER_PORT"))
        if seen == self._routable_as:
            return True
        if asked.scheme not in ("http", "https"):
            return False
        try:  # werkzeug's own test (``Map.bind``): each label valid IDNA, the port apart
            asked.host.lower().partition(":")[0].encode("idna")
        except UnicodeError:
            return False
        self._routable_as = seen
        return True

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.flask_wsgi(environ, start_response)
        asked = _Asked(environ)
        if not self._routable(asked):
            return self.flask_wsgi(environ, start_response)
        service, context = self.service, _Context()
        try:
            service.begin(asked, context)
            status, body, headers = 200, service.answer(asked, context), {}
        except Exception as exc:  # a control's refusal (ApiError), the lax parser's 4xx, or a bug: 500
            status, body, headers = error_answer(exc, context)
        try:
            replaced = service.settle(status, asked, context)
        except Exception as exc:  # a bug in a gate or a sink: the answer is not given
            replaced = error_answer(exc, context)
        if replaced is not None:
            status, body, headers = replaced
        payload = json_bytes(body)
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown').upper()}",  # as werkzeug writes it
                       [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                        *headers.items(), *security_headers(context).items()])
        return [payload]
