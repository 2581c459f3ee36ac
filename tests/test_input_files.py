"""Every input file the assessment reads is hostile until checked: a profile, the accepted risks, an earlier
findings.json and a target's OpenAPI document are refused before anything runs, in one line naming the file,
the key and what it accepts, with exit 4 (pytest's usage error); a draft profile keeps its structure whatever
the document says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fraudpipe.errors import ConfigError
from security_tests.servers import ROOT
from security_tests.targets.__main__ import main as draft_main

LOAN = (ROOT / "tests" / "targets" / "loan_service.toml").read_text()


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    return subprocess.run([sys.executable, "-m", "pytest", "security_tests", "--co", "-q", "-p", "no:cacheprovider",
                           "-o", "addopts=", f"--assessment-dir={tmp_path}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)


def _profile(tmp_path: Path, text: str) -> str:
    path = tmp_path / "target.toml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return str(path)


CASES = {
    "label as a list": (lambda t: ["--target-profile", _profile(t, LOAN.replace('label = "result.decision"',
                                                                                 'label = ["result", "decision"]'))],
                        "response.label must be a dotted path, got a list"),
    "typo and TODO at once": (lambda t: ["--target-profile", _profile(t, LOAN.replace(
        'predict_path = "/v2/score"', 'predict_pth = "/v2/score"').replace('positive = "DENY"', 'positive = "TODO"'))],
                              "unknown key predict_pth; response.positive is still TODO"),
    "hostile grey-box sections": (lambda t: ["--target-profile", _profile(t, LOAN + (
        f'[audit]\nlog = "{t}"\nstatus = "status"\n[artifacts]\nfolder = "{t / "missing"}"\n'
        'verify = "python -m verify {folder}"\n'))],
                                  ("artifacts.verify must be a command as a list of text, got text", "audit.log ",
                                   " is a folder; artifacts.folder ", "missing is not a folder")),
    "escape sequence in the name": (lambda t: ["--target-profile", _profile(t, LOAN.replace(
        'name = "loan-default scorer (test target)"', 'name = "\\u001b[2Jowned"'))], "name must be text"),
    "not UTF-8": (lambda t: ["--target-profile", _profile(t, "name = \"\udcff\"\n")], "is UTF-8 text"),
    "a directory": (lambda t: ["--target-profile", str(t)], "no target profile file there"),
    "owner given as a table": (lambda t: ["--accepted-risks", _write(t / "risks.toml", (
        '[[accept]]\nid = "HIGH-3"\nowner = { name = "x" }\nreason = "r"\nexpires = 2030-01-01\n'))],
                               "owner must be text"),
    "findings that are not objects": (lambda t: ["--compare-to", _write(t / "f.json", json.dumps(
        {"findings": ["CRIT-1"]}))], "findings[0] is not an object"),
    "a finding without an id": (lambda t: ["--compare-to", _write(t / "f.json", json.dumps(
        {"findings": [{"status": "OPEN"}]}))], "findings[0].id must be text"),
    "JSON nested 100,000 deep": (lambda t: ["--compare-to", _write(t / "f.json", "[" * 100_000 + "]" * 100_000)],
                                 "nested too deep"),
}


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _refusal(args: list[str]) -> str:
    """The one line the option's loader refuses the file with, in-process (what pytest prints after ERROR:)."""
    from security_tests.report.accepted_risks import load_accepted_risks
    from security_tests.report.compare import load_previous
    from security_tests.targets.profile import load_profile

    option, path = args
    loader = {"--target-profile": load_profile, "--accepted-risks": load_accepted_risks,
              "--compare-to": load_previous}[option]
    with pytest.raises((pytest.UsageError, ConfigError)) as refused:
        loader(path)
    return str(refused.value)


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_input_file_is_refused_in_one_line_naming_the_problem(case, tmp_path):
    make_args, expected = CASES[case]
    line = _refusal(make_args(tmp_path))
    assert "\n" not in line and all(part in line for part in _parts(expected)) and "\x1b" not in line, line


def _parts(expected: str | tuple[str, ...]) -> tuple[str, ...]:
    """What a refusal must say: one phrase, or every problem of a file that has several."""
    return expected if isinstance(expected, tuple) else (expected,)


@pytest.mark.parametrize("case", ["label as a list", "owner given as a table", "a finding without an id"])
def test_a_malformed_input_file_stops_the_run_in_one_line_with_exit_4(case, tmp_path):
    """One file of each kind through pytest itself: the loaders' line is all it prints, exit 4."""
    make_args, expected = CASES[case]
    result = _run(tmp_path, *make_args(tmp_path))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 4, (result.returncode, result.stderr[-1500:])
    assert len(lines) == 1 and all(part in lines[0] for part in _parts(expected)), lines
    assert "Traceback" not in result.stdout + result.stderr and "\x1b" not in result.stderr


@pytest.fixture
def documents():
    """A loopback server answering each path with the document stored for it."""
    served: dict[str, bytes] = {}

    class Documents(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = served.get(self.path, b"{}")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except ConnectionError:  # a reader that stops at its bound hangs up: expected, not worth a traceback
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Documents)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _openapi(properties, title="scorer", **extra) -> dict:
    body = {"content": {"application/json": {"schema": {"properties": properties}}}}
    return {"openapi": "3.1.0", "info": {"title": title}, "paths": {"/score": {"post": {"requestBody": body}}},
            **extra}


@pytest.mark.parametrize("document, message", [
    ({"paths": ["/score"]}, "'paths' is not an object"),
    ({"paths": {"/score": {"post": "yes"}}}, "no POST operation"),
    (_openapi({"x": {"$ref": "#/components/schemas/missing"}}), "points nowhere"),
    (_openapi({"x": {"$ref": "#/a"}}, a={"$ref": "#/a"}), "is not a local reference this draft can follow"),
    (_openapi({"x": {"$ref": "https://elsewhere.example/schema.json"}}), "is not a local reference"),
])
def test_a_malformed_openapi_document_is_refused_in_one_line_with_exit_4(documents, document, message, capsys):
    served, url = documents
    served["/doc"] = json.dumps(document).encode()
    assert draft_main(["draft", "--from-openapi", f"{url}/doc"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_an_openapi_document_over_16_mib_is_refused_unread(documents, capsys):
    served, url = documents
    served["/doc"] = b'{"x": "' + b"a" * (17 << 20) + b'"}'
    assert draft_main(["draft", "--from-openapi", f"{url}/doc"]) == 4
    assert "answer over 16 MiB" in capsys.readouterr().err


def test_a_draft_keeps_its_structure_whatever_the_document_says(documents, tmp_path):
    """A title with a quote and a newline once rewrote the drafted url; a field name with '"]' made invalid TOML.
    A ``$ref`` into a list is followed."""
    served, url = documents
    title = 'evil"\nurl = "http://attacker.example'
    name = 'amount"]\n[auth]\nheader = "X'
    document = _openapi({name: {"type": "number", "minimum": 0, "maximum": 9},
                         "n": {"$ref": "#/components/list/1"}}, title=title,
                        components={"list": [{"type": "string"}, {"type": "integer", "minimum": 1, "maximum": 5}]})
    served["/doc"] = json.dumps(document).encode()
    out = tmp_path / "draft.toml"
    assert draft_main(["draft", "--from-openapi", f"{url}/doc", "--out", str(out)]) == 0
    draft = tomllib.loads(out.read_text())
    assert draft["url"] == url and draft["auth"]["header"] == "X-API-Key"
    assert draft["name"] == 'evil"url = "http://attacker.example'
    assert set(draft["features"]) == {'amount"][auth]header = "X', "n"}
    assert draft["features"]["n"] == {"type": "int", "min": 1, "max": 5}


def test_hostile_grey_box_sections_stop_the_run_as_a_usage_error(tmp_path):
    """In-process, what pytest turns into exit 4 (the other cases above show the path through pytest itself):
    the option's loader raises ``pytest.UsageError`` with the one line naming every problem."""
    from types import SimpleNamespace

    from security_tests.target import _profile

    make_args, expected = CASES["hostile grey-box sections"]
    options = {"target_profile": make_args(tmp_path)[1], "target_url": None, "expected_rate_limit": None}
    with pytest.raises(pytest.UsageError) as refused:
        _profile(SimpleNamespace(getoption=options.__getitem__))
    assert "\n" not in str(refused.value) and all(part in str(refused.value) for part in _parts(expected))
