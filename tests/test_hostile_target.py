"""A target the assessor does not trust yet cannot take its key through a redirect."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from security_tests.attacks.client import HttpClient
from security_tests.targets.profile import load_profile

LOAN_PROFILE = Path(__file__).parent / "targets" / "loan_service.toml"


def _serve(handler) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_redirect_to_another_origin_never_receives_the_key():
    seen: list[dict] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args):
            pass

    elsewhere = _serve(Elsewhere)

    class Redirecting(BaseHTTPRequestHandler):
        def _redirect(self):
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{elsewhere.server_address[1]}/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET = _redirect

        def log_message(self, *args):
            pass

    target = _serve(Redirecting)
    try:
        profile = load_profile(LOAN_PROFILE)
        client = HttpClient(f"http://127.0.0.1:{target.server_address[1]}", api_key="assessor-secret-key",
                            profile=profile)
        answers = [client.predict(profile.positive_example), client.get("/health"),
                   client.request("POST", profile.predict_path, client.credentials(), b"{}")]
    finally:
        for server in (target, elsewhere):
            server.shutdown()
            server.server_close()
    assert [a.status for a in answers] == [307, 307, 307] and not any(a.ok for a in answers)
    assert seen == [], "the assessor's key reached another origin"
