"""The whole assessment on a second service built apart from fraudpipe (tests/targets/claims_service.py), with the
grey-box parts its owner holds: features nested under an object, a numeric label in a list, an audit log, a
model folder with its verify command, a requirements file and an interpreter. Weak and strong builds run live
on 127.0.0.1 and are stopped after; every path the profile names lives in a temporary folder of the test."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from security_tests.servers import ROOT, free_port, serve
from tests.test_live_target import assess

SERVICE = ("-m", "tests.targets.claims_service")
PROFILE = ROOT / "tests" / "targets" / "claims_service.toml"
KEYS = tuple(f"claims-key-{i:02d}-x7q" for i in range(20))
GREY_BOX = ("MED-2", "HIGH-2", "LOW-2", "MED-4")
PINNED = ("flask", "werkzeug", "numpy", "scikit-learn")


def grey_box_sections(root: Path, build: str) -> str:
    """The ``[audit]``, ``[artifacts]`` and ``[environment]`` of one build, with the paths under ``root``."""
    verify = [sys.executable, *SERVICE, "verify", "{folder}", "--build", build]
    return (f'\n[audit]\nlog = "{root / "audit.jsonl"}"\nstatus = "http.status"\nclient = "peer.address"\n'
            f'\n[artifacts]\nfolder = "{root / "model"}"\nverify = [{", ".join(repr(v) for v in verify)}]\n'
            f'\n[environment]\nrequirements = "{root / "requirements.txt"}"\npython = "{sys.executable}"\n')


def requirements(build: str) -> str:
    """Strong: every requirement pinned to what the interpreter has. Weak: loose, and one pin that is not installed."""
    if build == "strong":
        return "".join(f"{name}=={metadata.version(name)}\n" for name in PINNED)
    return "flask\nnumpy>=1.20\nscikit-learn==1.*\nwerkzeug==0.1\n"


@contextlib.contextmanager
def claims_service(build: str, root: Path):
    """The claims service of ``build`` on a free loopback port, its model folder, log, requirements and profile
    under ``root``; yields (server, profile path, env the verify command needs)."""
    (root / "signing.key").write_text("claims-signing-key-for-tests\n")
    env = {**os.environ, "CLAIMS_SIGNING_KEY": str(root / "signing.key"), "CLAIMS_API_KEYS": ",".join(KEYS),
           "CLAIMS_RATE_LIMIT": "30"}
    subprocess.run([sys.executable, *SERVICE, "build-model", str(root / "model"), "--build", build], env=env,
                   check=True, timeout=120, cwd=ROOT)
    (root / "requirements.txt").write_text(requirements(build))
    profile = root / "claims.toml"
    profile.write_text(PROFILE.read_text() + grey_box_sections(root, build))
    port = free_port()
    command = [sys.executable, *SERVICE, "serve", "--port", str(port), "--build", build, "--model",
               str(root / "model"), "--log", str(root / "audit.jsonl")]
    with serve(command, env, port, root / "server.log") as server:
        yield server, profile, env


@pytest.fixture(scope="module", params=["weak", "strong"])
def claims(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"claims-{request.param}")
    with claims_service(request.param, root) as (server, profile, env):
        yield request.param, server, profile, env, root


GREY_BOX_FILES = ("security_tests/test_target.py", "security_tests/test_med2_audit_log.py",
                  "security_tests/test_high2_artifact_integrity.py", "security_tests/test_low2_artifact_hygiene.py",
                  "security_tests/test_med4_supply_chain.py")


def _assess(claims, tmp_path, network: str) -> dict:
    """The strong build gets the whole suite (the nested body and numeric label end to end, HIGH-4 on eight keys);
    the weak build only the grey-box findings' files, where it must read open (the black-box ones are the loan
    service's weak build's to show)."""
    build, server, profile, env, root = claims
    before = {p.name: (p.stat().st_mode, p.read_bytes()) for p in (root / "model").iterdir()}
    suite = "security_tests" if build == "strong" else GREY_BOX_FILES
    found = assess(server.url, KEYS, tmp_path / "out", network, profile, env=env, suite=suite)
    after = {p.name: (p.stat().st_mode, p.read_bytes()) for p in (root / "model").iterdir()}
    assert before == after, "the assessment changed the target's model folder"
    return found


def test_grey_box_findings_are_assessed_on_another_service_and_called_right(claims, tmp_path):
    """Open on the weak build (no log, a verifier that checks names and loads the pickle, world-writable files
    with a key, loose pins), held on the strong one, whose whole assessment (the nested body and numeric label
    end to end, HIGH-4 measured on eight keys) calls nothing open but the residual risks."""
    build = claims[0]
    found = _assess(claims, tmp_path, "127.0.50.0/24" if build == "weak" else "127.0.51.0/24")
    expected = "OPEN" if build == "weak" else "Held"
    statuses = {fid: found[fid]["status"] for fid in GREY_BOX}
    assert statuses == dict.fromkeys(GREY_BOX, expected), found["_stdout"][-3000:]
    if build == "strong":
        assert found["HIGH-4"]["status"] not in ("Not run", "Error", "Not assessed"), found["HIGH-4"]["tests"]
        trail = next(t for t in found["MED-2"]["tests"] if "test_the_targets_own_log" in t["nodeid"])
        assert 429 in trail["evidence"]["details"]["statuses_answered"], trail["evidence"]["summary"]
        black_box = {fid: found[fid]["status_code"] for fid in ("CRIT-1", "CRIT-2", "HIGH-1", "MED-1")}
        assert set(black_box.values()) <= {"held", "control_verified_residual_remains"}, black_box
    context = found["_assessment"]["context"]
    assert context["mode"].startswith("grey-box over HTTP") and "[artifacts]" in context["mode"], context["mode"]
    if build == "weak":
        high2 = next(t for t in found["HIGH-2"]["tests"] if "test_the_targets_verify" in t["nodeid"])
        ran = high2["evidence"]["details"]["code_ran_in"]
        assert "model.pkl replaced by a pickle whose load writes a marker" in ran, high2["evidence"]["summary"]
