"""Rate limiting with flask-limiter, checked after authentication: one budget per API key and one per client address.

Counting both means neither rotating keys from one address nor sharing one key across many
addresses escapes the limit. The client address is the socket peer unless a trusted proxy count is
configured (werkzeug's ProxyFix then reads that many ``X-Forwarded-For`` hops), so a client cannot
reset its own budget by inventing a header.
"""

from __future__ import annotations

import time

from flask import Flask, g, request
from flask_limiter import Limiter

from fraudpipe.serving.errors import http_error_response


def client_address() -> str:
    return request.remote_addr or "unknown"


def key_identity() -> str:
    return getattr(g, "key_id", None) or "anonymous"


def install_limiter(app: Flask, storage_uri: str) -> Limiter:
    """X-RateLimit-* headers stay off: each would cost one more storage round trip on every answered
    request. The refusal carries Retry-After, computed only when a limit is hit (``retry_after``)."""
    return Limiter(client_address, app=app, storage_uri=storage_uri, headers_enabled=False,
                   strategy="fixed-window", default_limits=[], key_prefix="fraudpipe")


def retry_after(limiter: Limiter) -> int:
    """Seconds until the breached window resets (at least 1)."""
    breached = limiter.current_limit
    if breached is None:
        return 1
    return max(1, int(breached.reset_at - time.time()))


def limit_route(limiter: Limiter, rate: str, view, per_key: bool):
    """Per client address always; per API key too when keys exist (without auth every caller is one key)."""
    if per_key:
        view = limiter.limit(rate, key_func=key_identity, scope="key")(view)
    return limiter.limit(rate, key_func=client_address, scope="client")(view)


def install(app: Flask, service) -> None:
    limiter = install_limiter(app, service.settings.rate_limit_storage)
    per_key = "auth" in service.controls
    service.predict_wrappers.append(lambda view: limit_route(limiter, service.settings.rate_limit, view, per_key))

    @app.errorhandler(429)
    def too_many(exc):
        response = http_error_response(exc)
        response.headers["Retry-After"] = str(retry_after(limiter))
        return response
