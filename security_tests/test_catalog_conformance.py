"""The catalog and the suite agree: every finding tested in every variant, with a real control, a valid
vector and a severity note exactly when the computed severity leaves the id's band."""

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from fraudpipe.serving.app import CONTROL_NAMES
from security_tests.conformance import catalog_problems, collect_in_subprocess, variants_by_finding
from security_tests.contract import TRAINING_CONTROLS, variants
from security_tests.findings import FINDINGS, finding

SUITE = Path(__file__).parent


def expected_variants(item) -> list[str]:
    return [variant.id for variant in variants(item)]


def _collected(request, tmp_path) -> dict:
    items = request.session.items
    files = {Path(str(item.fspath)).name for item in items}
    if {p.name for p in SUITE.glob("test_*.py")} <= files and len(items) == request.session.testscollected:
        return variants_by_finding(items)
    return collect_in_subprocess(SUITE, tmp_path)


@pytest.mark.white_box("reads the catalog and the suite's own test collection")
def test_every_finding_conforms_to_the_catalog_rules(request, tmp_path):
    collected = _collected(request, tmp_path)
    controls = set(CONTROL_NAMES) | {name for name in TRAINING_CONTROLS if importlib.util.find_spec(f"fraudpipe.{name}")}
    assert catalog_problems(FINDINGS, collected, controls, expected_variants) == []


@pytest.mark.white_box("reads the catalog")
def test_the_conformance_check_sees_each_kind_of_breach():
    item = finding("HIGH-2")
    broken = [dataclasses.replace(item, id="HIGH-8", cvss_vector="CVSS:3.1/AV:N/XX:Y"),
              dataclasses.replace(item, id="HIGH-9", severity_note="needless"),
              dataclasses.replace(item, id="MED-9", control="no_such_control")]
    collected = {"HIGH-9": {"inherited", "hardened", "hardened-without-verify_artifacts"}}
    problems = catalog_problems(broken, collected, set(CONTROL_NAMES), expected_variants)
    assert [p.split(":")[0] for p in problems] == ["HIGH-8", "HIGH-9", "MED-9", "MED-9"], problems
