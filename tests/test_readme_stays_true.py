"""The README is run, not just read: its quickstart is replayed as written on a copy of the repository, and
every count it quotes from a run is checked against what pytest collects now."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from security_tests.servers import ROOT, free_port

README = (ROOT / "README.md").read_text()
QUICKSTART = re.search(r"```bash quickstart\n(.*?)```", README, re.S).group(1)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "FRAUDPIPE_", "GITHUB_", "XDG_CONFIG_HOME", "PYTHONPATH"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed (.ci/run installs it)")
def test_the_quickstart_runs_as_written_on_a_fresh_copy(tmp_path):
    """A fresh clone (the repository's files, no artifacts), a fresh home folder, no FRAUDPIPE_* variable:
    exactly the README's lines, on a free port instead of 8000."""
    clone, home = tmp_path / "clone", tmp_path / "home"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "artifacts", ".venv", ".git")
    for name in ("fraudpipe", "security_tests", "docs", "tests"):
        shutil.copytree(ROOT / name, clone / name, ignore=ignore)
    for name in ("conftest.py", "pytest.ini", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, clone / name)
    home.mkdir()
    script = QUICKSTART.replace("8000", str(free_port()))
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with open(stdout, "w") as out_file, open(stderr, "w") as err_file:
        process = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=clone, text=True,
                                   stdout=out_file, stderr=err_file, start_new_session=True,
                                   env=_clean_env(HOME=str(home)))
        try:
            process.wait(timeout=300)
        finally:
            try:  # the server the script started, if a failing step left it running
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
    out, err = stdout.read_text(), stderr.read_text()
    assert process.returncode == 0, out[-3000:] + err[-3000:]
    assert re.search(r'"status":\s*"ok"', out), out[:2000]
    assert re.search(r'"label":\s*"FRAUD"', out), out[:2000]
    assert (home / ".config" / "fraudpipe" / "api-keys").read_text().startswith("alice ")
    findings = {f["id"]: f for f in json.loads((clone / "artifacts" / "findings.json").read_text())["findings"]}
    held = {fid for fid, f in findings.items() if f["status"] == "Held"}
    assert {"CRIT-1", "CRIT-2", "HIGH-1"} <= held, {fid: f["status"] for fid, f in findings.items()}
    assert not any(f["status"] in ("OPEN", "Error") for f in findings.values())
    assert "not ready" not in err, err[-2000:]


def _collected() -> tuple[int, int]:
    """(assessment test cases, every test), from one collection: the suite's time budget is tight."""
    result = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider",
                             "-o", "addopts="], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=_clean_env())
    ids = [line for line in result.stdout.splitlines() if "::" in line]
    assert len(ids) == int(re.search(r"(\d+) tests? collected", result.stdout).group(1))
    return sum(line.startswith("security_tests/") for line in ids), len(ids)


def test_every_count_the_readme_quotes_is_what_pytest_collects_now():
    assessment, everything = _collected()
    quoted = {int(n) for n in re.findall(r"(\d+) assessment test cases", README)}
    assert quoted == {assessment}, f"the README quotes {sorted(quoted)} assessment test cases; pytest collects {assessment}"
    quoted_all = {int(n) for n in re.findall(r"every test: (\d+)", README)}
    assert quoted_all == {everything}, f"the README quotes {sorted(quoted_all)} tests in all; pytest collects {everything}"
