"""The catalog and the suite agree: every finding tested in every variant, with a real control, a valid
vector and a severity note exactly when the computed severity leaves the id's band."""

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from fraudpipe.serving.app import CONTROL_NAMES
from security_tests.conformance import (catalog_problems, collect_in_subprocess, engine_problems, engine_records,
                                        variants_by_finding)
from security_tests.contract import TRAINING_CONTROLS, variants
from security_tests.findings import FINDINGS, finding

SUITE = Path(__file__).parent


def expected_variants(item) -> list[str]:
    return [variant.id for variant in variants(item)]


ATTACK_MODULES = [f"security_tests.attacks.{p.stem}" for p in (SUITE / "attacks").glob("*.py")
                  if p.stem not in ("__init__", "client")]


def _collected(request, tmp_path) -> tuple[dict, list[dict]]:
    items = request.session.items
    files = {Path(str(item.fspath)).name for item in items}
    if {p.name for p in SUITE.glob("test_*.py")} <= files and len(items) == request.session.testscollected:
        return variants_by_finding(items), engine_records(items)
    return collect_in_subprocess(SUITE, tmp_path)


@pytest.mark.white_box("reads the suite's own test collection")
def test_every_finding_keeps_the_engine_rules(request, tmp_path):
    assert engine_problems(_collected(request, tmp_path)[1], ATTACK_MODULES) == []


@pytest.mark.white_box("reads the engine rules")
def test_the_engine_check_sees_each_kind_of_breach():
    record = {"finding": "MED-9", "file": "test_med9_x.py", "test": "t", "modules": ["security_tests.attacks.a"],
              "live": True, "white_box": False}
    records = [record, dict(record, file="test_other.py", live=False), dict(record, finding="MED-8",
                                                                              file="test_med8_y.py", modules=[])]
    problems = engine_problems(records, ["security_tests.attacks.a", "security_tests.attacks.b"])
    assert problems == [
        "MED-9: t neither runs live (an attack with @spends) nor says what to check by hand (white_box)",
        "MED-8: t names no attack (@runs)",
        "MED-9: tests in test_med9_x.py, test_other.py; want one file test_med9_*.py",
        "security_tests.attacks.b is run by no finding's test"], problems


@pytest.mark.white_box("reads the catalog and the suite's own test collection")
def test_every_finding_conforms_to_the_catalog_rules(request, tmp_path):
    collected = _collected(request, tmp_path)[0]
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
