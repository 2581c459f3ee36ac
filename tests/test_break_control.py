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
# The slowest hardened cases (real-time windows, schemathesis, HopSkipJump: 9 s of a 18 s run), by finding:
# they run when their finding's control (or one it relies on) is the one broken; the other breaks see
# those findings' quicker cases, which still show that breaking another control leaves them held.
SLOW = {"HIGH-1": ("lapse_half_used", "window_boundary", "granted_before_a_pause"),
        "MED-1": ("schemathesis",), "HIGH-3": ("hopskipjump",)}


def test_every_service_control_has_a_finding():
    assert set(CONTROL_NAMES) <= set(CONTROLS)


@pytest.mark.parametrize("control", CONTROLS)
def test_breaking_one_control_fails_exactly_its_findings(control, tmp_path):
    expected = {f.id for f in FINDINGS if f.control == control or control in f.relies_on}
    skipped = [name for finding, names in SLOW.items() if finding not in expected for name in names]
    selection = " and ".join(["hardened] and not redis", *(f"not {name}" for name in skipped)])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "security_tests", "-q", "-rf", "-p", "no:cacheprovider", "-o", "addopts=",
         "-k", selection, f"--break-control={control}", f"--assessment-dir={tmp_path}", "--no-assessment-pdf"],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    failed = set(re.findall(r"^FAILED \S+\[([A-Z]+-\d+)\[hardened\]", result.stdout, re.M))
    assert result.returncode == 1 and failed == expected, result.stdout[-2000:]
