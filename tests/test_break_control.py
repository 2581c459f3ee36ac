"""Switching one control off in the hardened fixture makes exactly the hardened tests of that control's
findings fail (and of the findings whose control relies on it, as the catalog says), and no other: the
suite pins each attack on the control that blocks it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fraudpipe.serving.app import CONTROL_NAMES
from security_tests.findings import FINDINGS

ROOT = Path(__file__).resolve().parents[1]
CONTROLS = sorted({f.control for f in FINDINGS if f.control})


def test_every_service_control_has_a_finding():
    assert set(CONTROL_NAMES) <= set(CONTROLS)


@pytest.mark.parametrize("control", CONTROLS)
def test_breaking_one_control_fails_exactly_its_findings(control, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "security_tests", "-q", "-rf", "-p", "no:cacheprovider", "-o", "addopts=",
         "-k", "hardened] and not redis", f"--break-control={control}", f"--assessment-dir={tmp_path}",
         "--no-assessment-pdf"],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    failed = set(re.findall(r"^FAILED \S+\[([A-Z]+-\d+)\[hardened\]", result.stdout, re.M))
    expected = {f.id for f in FINDINGS if f.control == control or control in f.relies_on}
    assert result.returncode == 1 and failed == expected, result.stdout[-2000:]
