"""The GitHub Actions workflow stays in step with the code: it parses, runs the README's command with
options pytest really has, and uploads the files that command writes, whether the gate passed or not."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from security_tests.report.accepted_risks import load_accepted_risks

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "assessment.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def steps(workflow) -> list[dict]:
    return workflow["jobs"]["assessment"]["steps"]


@pytest.fixture(scope="module")
def assessment_command(steps) -> list[str]:
    runs = [step["run"] for step in steps if step.get("run", "").startswith("pytest security_tests")]
    assert len(runs) == 1, runs
    return shlex.split(runs[0])


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def _uses(steps, action: str) -> dict:
    found = [step for step in steps if step.get("uses", "").startswith(action + "@")]
    assert len(found) == 1, action
    return found[0]


def test_workflow_triggers_and_may_upload_security_events(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert {"push", "pull_request"} <= set(triggers)
    assert workflow["permissions"]["security-events"] == "write"


def test_every_option_the_workflow_passes_exists(assessment_command):
    options = {arg.split("=")[0] for arg in assessment_command if arg.startswith("--")}
    assert {"--sarif", "--fail-on", "--accepted-risks", "--summary", "--junit-xml"} <= options
    help_text = subprocess.run([sys.executable, "-m", "pytest", "security_tests", "--help", "-p", "no:cacheprovider"],
                               cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    missing = [option for option in sorted(options) if not re.search(rf"(^|\s){re.escape(option)}[\s=,]", help_text, re.M)]
    assert not missing
    assert _option(assessment_command, "--fail-on") == "high"
    assert load_accepted_risks(REPO / _option(assessment_command, "--accepted-risks")) is not None


def test_the_readme_documents_the_command_the_workflow_runs(steps, assessment_command):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Running in CI"):].replace("\\\n", " ")
    commands = [shlex.split(line) for line in section.splitlines()
                if line.startswith("pytest security_tests") and "--sarif" in line]
    assert assessment_command in commands
    assert "pip install -r requirements.txt" in [step.get("run") for step in steps]
    for option in ("--sarif", "--fail-on", "--accepted-risks", "--summary", "--compare-to"):
        assert f"`{option}" in section, option


def test_reports_are_uploaded_even_when_the_gate_fails(steps, assessment_command):
    _uses(steps, "actions/checkout")
    _uses(steps, "actions/setup-python")
    sarif = _uses(steps, "github/codeql-action/upload-sarif")
    assert sarif["with"]["sarif_file"] == _option(assessment_command, "--sarif")
    artifacts = _uses(steps, "actions/upload-artifact")
    paths = artifacts["with"]["path"].split()
    ini = (REPO / "pytest.ini").read_text()
    html = re.search(r"--html=(\S+)", ini).group(1)
    assert {html, "artifacts/security-assessment.pdf", "artifacts/findings.json"} <= set(paths)
    for step in (sarif, artifacts):
        assert "always()" in step["if"]
