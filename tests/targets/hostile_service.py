"""A target that attacks its assessor (test only): ``python -m tests.targets.hostile_service MODE PORT``.

It speaks the loan service's profile (``loan_service.toml``) and misbehaves one way per MODE:

- ``echo``: answers every request correctly, with the request's headers (the assessor's key among them)
  and body echoed back, markup (``<script>``, ``<svg onload>``) and terminal escapes in its text;
- ``huge``: streams an endless answer (2 GiB if read to the end);
- ``bomb``: a gzip answer of about 1 MiB that inflates to 1 GiB;
- ``deep``: JSON nested 100,000 levels deep;
- ``silent``: accepts every connection and never answers, on every route.

Plain ``http.server``, not Flask: the misbehaviour has to reach the socket as written.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOSTILE_TEXT = "<script>alert(1)</script><svg onload=alert(2)> \x1b[2J\x1b]0;owned\x07 \u202egnp.exe"
GIB = 1 << 30


def _bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(GIB >> 20)) + packer.flush()


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "echo"
    bomb = b""

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(body)),
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 4 << 20)) if length else b""
        if self.mode == "silent":
            time.sleep(3600)
            return
        if self.mode == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(2 * GIB))
            self.end_headers()
            chunk = b" " * (1 << 20)
            try:
                for _ in range(2048):
                    self.wfile.write(chunk)
            except OSError:
                pass
            return
        if self.mode == "bomb":
            self._send(200, self.bomb, {"Content-Encoding": "gzip"})
            return
        if self.mode == "deep":
            self._send(200, b"[" * 100_000 + b"]" * 100_000)
            return
        try:
            body = json.loads(raw or b"{}")
            income = float(body.get("income", 0)) if isinstance(body, dict) else 0.0
        except (ValueError, TypeError):
            income = 0.0
        echo = {"headers": dict(self.headers), "body": raw.decode("utf-8", "replace"), "path": self.path,
                "note": HOSTILE_TEXT}
        answer = {"result": {"decision": "DENY" if income < 50_000 else "APPROVE"}, "echo": echo}
        self._send(200, json.dumps(answer).encode(), {"X-Echo": self.headers.get("Authorization", "")})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _answer

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(200, b"")


def main(argv: list[str]) -> None:
    mode, port = argv[0], int(argv[1])
    Hostile.mode = mode
    if mode == "bomb":
        Hostile.bomb = _bomb()
    server = ThreadingHTTPServer(("127.0.0.1", port), Hostile)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
