"""MED-4 — dependencies and artifacts not tied to exact versions: a release whose signed manifest records
another scikit-learn must be refused at load, and every requirement must be pinned, installed as pinned and
listed in the environment's SBOM. Reads the environment and the artifact folder, so it runs in-process only."""

from pathlib import Path

import pytest

from fraudpipe.artifacts import load_artifacts, load_unverified
from security_tests.attacks.supply_chain import (audit_pins, foreign_version_artifacts, load_foreign_build,
                                                 pinned_environment, target_environment)
from security_tests.contract import expect_attack, grey_box_part
from security_tests.markers import runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.white_box("check the deployed environment: pip freeze against requirements.txt, and the SBOM")
@pytest.mark.finding("MED-4")
@runs(load_foreign_build)
def test_model_built_with_another_library_version_is_refused(variant, trained, tmp_path, evidence):
    folder = foreign_version_artifacts(trained.artifacts_dir, tmp_path, trained.signing_key)
    if variant.control_on("verify_artifacts"):
        load = lambda path: load_artifacts(path, trained.trusted_key)  # noqa: E731
    else:
        load = load_unverified
    expect_attack(variant, evidence.record(load_foreign_build(folder, load)))


@pytest.mark.white_box("check the deployed environment: pip freeze against requirements.txt, and the SBOM")
@pytest.mark.finding("MED-4")
@runs(pinned_environment)
def test_every_requirement_is_pinned_installed_as_pinned_and_listed_in_the_sbom(request, tmp_path, evidence):
    loose = tmp_path / "loose.txt"
    loose.write_text("numpy>=1.0\nflask\nscikit-learn==1.*\n")
    detector = audit_pins(loose)
    found = evidence.record(pinned_environment(ROOT / "requirements.txt", _artifacts_dir(request) / "sbom.json"))
    found.details["detector_flags_loose_file"] = detector["unpinned"]
    assert detector["unpinned"] == ["numpy>=1.0", "flask", "scikit-learn==1.*"]
    assert not found.attack_succeeded, found.summary


def _artifacts_dir(request) -> Path:
    out = Path(request.config.getoption("assessment_dir"))
    return out if out.is_absolute() else Path(request.config.rootpath) / out


@pytest.mark.finding("MED-4")
@runs(target_environment)
def test_the_targets_requirements_are_pinned_installed_as_pinned_and_listed_in_an_sbom(request, grey_box, evidence):
    """Grey-box: the profile's ``[environment]`` names the requirements file and the interpreter that runs the
    target."""
    environment = grey_box_part(grey_box().profile.environment, "environment", "MED-4")
    found = evidence.record(target_environment(environment, _artifacts_dir(request) / "sbom-target.json"))
    assert not found.attack_succeeded, found.summary
