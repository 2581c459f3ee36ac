"""The front between granian's HTTP/1.1 server and the Flask app: what nginx would do in front of it.

granian parses requests in Rust, keeps connections alive and drops a client whose headers do not arrive
within the header timeout (also the longest an idle keep-alive connection is held). It does not time a
request body: a WSGI app reading a body sent one byte a minute would hold its worker thread for as long
as the client likes. So the app is served over RSGI, and this front reads the body on the event loop
with a deadline and a size bound before the app runs: a slow client costs a coroutine, never the worker.
A body that is late is answered 408 by the app itself (so it is logged like any other answer); a body
over the bound reaches the app cut one byte past it, so the app's own validation answers 413.

The environ is built here from the request alone: granian's WSGI adapter would copy the server's whole
environment (``FRAUDPIPE_API_KEYS`` among it) into every request. Header names containing ``_`` are
dropped, as gunicorn and nginx do: ``X_API_Key`` would otherwise become the same CGI variable as
``X-API-Key``, a second, unlogged spelling of a header a control reads.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

BODY_TIMED_OUT = "fraudpipe.body_timed_out"
WATCH_SECONDS = 0.25
UNBOUNDED_BODY = 16 * 1_048_576  # profiles without input validation, as acquired: large bodies accepted
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
            415: "Unsupported Media Type", 422: "Unprocessable Content", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}
_CGI_NAMES = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
_FAILED = (500, [("content-type", "application/json")],
           b'{"error":"internal_error","reason":"the request could not be processed"}\n')


def _host_port(text: str) -> tuple[str, str]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or text, port


class Front:
    """An RSGI application wrapping one WSGI app; one per worker process."""

    def __init__(self, wsgi_app: Callable, body_bytes: int, body_seconds: float) -> None:
        self.wsgi_app = wsgi_app
        self.body_bytes = body_bytes
        self.body_seconds = body_seconds
        self._reading: dict[asyncio.Task, float] = {}
        self._loop_time = time.monotonic

    async def __rsgi__(self, scope, protocol) -> None:
        if scope.proto != "http":
            return
        body, timed_out = await self._read_body(scope, protocol)
        environ = self.environ(scope, body, timed_out)
        status, headers, content = self._call(environ)
        protocol.response_bytes(status, headers, content)

    async def _read_body(self, scope, protocol) -> tuple[bytes, bool]:
        """At most ``body_bytes`` + 1 bytes, within ``body_seconds`` of the headers. A declared length
        within the bound is read in one await; anything else is streamed and cut one byte past it."""
        declared = scope.headers.get("content-length")
        if scope.method in ("GET", "HEAD") and declared is None and "transfer-encoding" not in scope.headers:
            return b"", False
        task = asyncio.current_task()
        self._reading[task] = self._loop_time() + self.body_seconds
        try:
            if declared is not None and declared.isdigit() and int(declared) <= self.body_bytes:
                return await protocol(), False
            if declared is not None and declared.isdigit():
                return b"", False  # declared over the bound: the app answers 413 from the header alone
            chunks, size = [], 0
            async for chunk in protocol:
                chunks.append(chunk)
                size += len(chunk)
                if size > self.body_bytes:
                    break
            return b"".join(chunks)[:self.body_bytes + 1], False
        except asyncio.CancelledError:
            if task.cancelling() and self._reading.get(task) == -1:
                task.uncancel()
                return b"", True
            raise
        except Exception:  # the client went away mid-body: what arrived is all there is
            return b"", False
        finally:
            self._reading.pop(task, None)

    async def _watch(self) -> None:
        """One timer per worker instead of one per request: cancels body reads past their deadline."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            now = self._loop_time()
            for task, deadline in list(self._reading.items()):
                if 0 <= deadline < now:
                    self._reading[task] = -1
                    task.cancel()

    def __rsgi_init__(self, loop) -> None:
        self._loop_time = loop.time
        self._watcher = loop.create_task(self._watch())

    @staticmethod
    def environ(scope, body: bytes, timed_out: bool) -> dict:
        client, client_port = _host_port(scope.client or "")
        server, server_port = _host_port(scope.server or "")
        path = unquote_to_bytes(scope.path.partition("?")[0]).decode("latin-1")  # PEP 3333: decoded, latin-1
        environ = {
            "REQUEST_METHOD": scope.method, "SCRIPT_NAME": "", "PATH_INFO": path,
            "QUERY_STRING": scope.query_string, "SERVER_NAME": server, "SERVER_PORT": server_port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}", "REMOTE_ADDR": client, "REMOTE_PORT": client_port,
            "wsgi.version": (1, 0), "wsgi.url_scheme": scope.scheme, "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "wsgi.input_terminated": True, BODY_TIMED_OUT: timed_out,
        }
        for name, value in scope.headers.items():
            if "_" in name:
                continue
            key = _CGI_NAMES.get(name) or "HTTP_" + name.upper().replace("-", "_")
            # A repeated header is joined, never replaced: a second Content-Type must not win over the
            # first one a proxy in front may have read (joined, it is no media type: 415).
            environ[key] = f"{environ[key]}, {value}" if key in environ else value
        if "transfer-encoding" in scope.headers and "CONTENT_LENGTH" not in environ:
            environ["CONTENT_LENGTH"] = ""  # chunked: the app reads the (bounded) input to its end
        return environ

    def _call(self, environ: dict) -> tuple[int, list[tuple[str, str]], bytes]:
        started: list = []

        def start_response(status: str, headers: list, exc_info=None) -> None:
            started[:] = [int(status[:3]), headers]

        try:
            result = self.wsgi_app(environ, start_response)
            try:
                content = b"".join(result)
            finally:
                getattr(result, "close", lambda: None)()
            return started[0], started[1], content
        except Exception:  # Flask answers its own errors; this is a bug in the front or the server glue
            return _FAILED


def front_for(app, settings, validated: bool) -> Front:
    """The bound is the app's own body limit when it validates input, else what an unvalidated service
    accepted as acquired (up to 16 MiB, buffered: bounded memory per request either way)."""
    return Front(app, settings.max_body_bytes if validated else UNBOUNDED_BODY, settings.client_timeout)
