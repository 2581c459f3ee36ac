"""A target the assessor does not trust yet cannot take its key (through a redirect or an echo), hold it, exhaust
its memory or put live markup and terminal escapes into its outputs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pypdf import PdfReader

from security_tests.attacks.client import HttpClient
from security_tests.contract import TargetMisbehaved
from security_tests.servers import ROOT, free_port
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


def test_a_cookie_the_target_sets_is_never_sent_back():
    seen: list[str | None] = []

    class Planting(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Set-Cookie", "session=planted; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = _serve(Planting)
    try:
        client = HttpClient(f"http://127.0.0.1:{server.server_address[1]}")
        client.get("/health")
        client.get("/health")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [None, None]


def test_a_target_trickling_its_headers_is_cut_off_at_the_deadline():
    """A read timeout restarts with every byte; only the deadline that shuts the socket bounds a trickle."""
    class Trickle(BaseHTTPRequestHandler):
        def _trickle(self):
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for _ in range(60):
                    self.wfile.write(b"X-Slow: 1\r\n")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass

        do_POST = do_GET = _trickle

        def log_message(self, *args):
            pass

    server = _serve(Trickle)
    server.daemon_threads = True
    try:
        client = HttpClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(TargetMisbehaved, match="no (complete )?answer in 1 s"):
            client.get("/health")
        assert time.monotonic() - started < 2.5
    finally:
        server.shutdown()
        server.server_close()


# A whole live assessment against a target that attacks its assessor (tests/targets/hostile_service.py).


KEYS = ("hostile-key-Zq8ZVb2u1", "hostile-key-Mw4RtY7p2", "hostile-key-Pk3XnL9s3", "hostile-key-Hd6CvB5t4")
MEASURE = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
           "print('maxrss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
           "sys.exit(code)")


@pytest.fixture
def hostile(request, tmp_path):
    """The hostile service in MODE on a free loopback port, stopped after."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "tests.targets.hostile_service", request.param, str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        yield request.param, f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def _assess(url: str, out, network: str) -> dict:
    """The README's live command with every output on, in a subprocess whose peak memory is measured."""
    profile = out / "hostile.toml"
    profile.write_text(LOAN_PROFILE.read_text().replace('positive = "DENY"', 'positive = "DENY"\ntimeout = 2'))
    args = [sys.executable, "-c", MEASURE, sys.executable, "-m", "pytest", "security_tests", "-q", "-p",
            "no:cacheprovider", "-o", "addopts=", "--target-profile", str(profile), "--target-url", url,
            "--max-wait", "0", "--source-addresses", network, f"--assessment-dir={out}",
            f"--html={out / 'report.html'}", "--self-contained-html", f"--sarif={out / 'a.sarif'}",
            f"--summary={out / 'summary.md'}", f"--junitxml={out / 'junit.xml'}"]
    for key in KEYS:
        args += ["--api-key", key]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    started = time.monotonic()
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)
    seconds = time.monotonic() - started
    assert (out / "findings.json").exists(), result.stdout[-3000:] + result.stderr[-2000:]
    peak = int(re.search(r"maxrss_kib (\d+)", result.stderr).group(1)) / 1024
    return {"findings": json.loads((out / "findings.json").read_text()), "console": result.stdout + result.stderr,
            "peak_mib": peak, "seconds": seconds, "exit": result.returncode}


def _outputs(out, console: str) -> dict[str, str]:
    texts = {name: (out / name).read_text(encoding="utf-8") for name in
             ("findings.json", "report.html", "a.sarif", "summary.md", "junit.xml")}
    texts["security-assessment.pdf"] = "\n".join(p.extract_text() for p in
                                                 PdfReader(out / "security-assessment.pdf").pages)
    texts["console"] = console
    return texts


@pytest.mark.parametrize("hostile", ["echo"], indirect=True)
def test_a_target_echoing_the_key_and_markup_leaves_no_key_and_nothing_live_in_any_output(hostile, tmp_path):
    _, url = hostile
    run = _assess(url, tmp_path, "127.0.9.0/24")
    texts = _outputs(tmp_path, run["console"])
    print(f"echo: peak {run['peak_mib']:.0f} MiB, {run['seconds']:.1f} s")
    for name, text in texts.items():
        for key in KEYS:
            assert key.lower() not in text.lower(), f"{name} carries the assessor's key {key}"
        assert "\x1b" not in text and "\u202e" not in text, f"{name} carries a terminal escape or bidi override"
    assert "[api key 1]" in texts["findings.json"], "the target echoed the key, so the marker must show where"
    for name in ("report.html", "summary.md"):
        assert not re.search(r"<script>alert|<svg onload", texts[name], re.I), f"{name} would run target markup"


@pytest.mark.parametrize("hostile", ["huge", "bomb", "deep", "silent"], indirect=True)
def test_a_huge_bombing_deep_or_silent_target_ends_the_run_in_bounded_time_and_memory_unmeasured(hostile, tmp_path):
    mode, url = hostile
    run = _assess(url, tmp_path, f"127.0.{10 + ['huge', 'bomb', 'deep', 'silent'].index(mode)}.0/24")
    findings = run["findings"]
    print(f"{mode}: peak {run['peak_mib']:.0f} MiB, {run['seconds']:.1f} s")
    assert run["peak_mib"] < 500, f"the assessment peaked at {run['peak_mib']:.0f} MiB against a {mode} target"
    assert run["seconds"] < 60, run["seconds"]
    by_id = {f["id"]: f for f in findings["findings"]}
    black_box = [fid for fid in ("CRIT-1", "CRIT-2", "HIGH-1", "HIGH-3", "HIGH-4", "MED-1") if fid in by_id]
    assert black_box, by_id.keys()
    for fid in black_box:
        assert by_id[fid]["status_code"] == "not_assessed", (mode, fid, by_id[fid]["status"], by_id[fid]["measured"])
        assert fid in findings["verdict"], (fid, findings["verdict"])
    spoiled = {fid for fid in black_box for t in by_id[fid]["tests"]
               if (t.get("not_assessed") or {}).get("kind") == "target"}
    assert {"CRIT-1", "CRIT-2"} <= spoiled, spoiled
    assert "the target broke the assessor's rules" in findings["verdict"]
    assert "not measured" in findings["verdict"] and not findings["verdict"].startswith("READY")
    if mode == "silent":  # after three unanswered requests nothing more is sent: the run ends in seconds
        reasons = [t["message"] for f in by_id.values() for t in f["tests"]]
        assert any("stopped answering" in reason for reason in reasons), reasons
