from pathlib import Path

import pytest

from fraudpipe.artifacts import load_artifacts, load_unverified
from security_tests.attacks.supply_chain import audit_pins, foreign_version_artifacts, load_foreign_build, write_sbom
from security_tests.conftest import expect_attack, variant_controls

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.white_box("check the deployed environment: pip freeze against requirements.txt, and the SBOM")
@pytest.mark.finding("MED-4")
def test_model_built_with_another_library_version_is_refused(request, variant, trained, tmp_path, evidence):
    folder = foreign_version_artifacts(trained.artifacts_dir, tmp_path, trained.signing_key)
    profile, controls = variant_controls(variant, request.config.getoption("break_control"))
    if profile == "hardened" and controls.get("verify_artifacts", True):
        load = lambda path: load_artifacts(path, trained.trusted_key)  # noqa: E731
    else:
        load = load_unverified
    evidence.update(load_foreign_build(folder, load))
    expect_attack(variant, evidence)


@pytest.mark.white_box("check the deployed environment: pip freeze against requirements.txt, and the SBOM")
@pytest.mark.finding("MED-4")
def test_every_requirement_is_pinned_installed_as_pinned_and_listed_in_the_sbom(request, tmp_path, evidence):
    audit = audit_pins(ROOT / "requirements.txt")
    loose = tmp_path / "loose.txt"
    loose.write_text("numpy>=1.0\nflask\nscikit-learn==1.*\n")
    detector = audit_pins(loose)
    out = Path(request.config.getoption("assessment_dir"))
    out = out if out.is_absolute() else Path(request.config.rootpath) / out
    sbom = write_sbom(out / "sbom.json")
    missing_from_sbom = sorted(name for name in audit["pinned"] if name not in sbom["component_versions"])
    evidence.update({
        "requirements": audit["requirements"], "unpinned": audit["unpinned"],
        "installed_differs": audit["installed_differs"], "sbom": sbom["sbom"], "sbom_components": sbom["components"],
        "sbom_spec_version": sbom["spec_version"], "pinned_missing_from_sbom": missing_from_sbom,
        "detector_flags_loose_file": detector["unpinned"],
        "attack_succeeded": bool(audit["unpinned"] or audit["installed_differs"]),
        "summary": (f"{audit['requirements']} requirements, {len(audit['unpinned'])} unpinned, "
                    f"{len(audit['installed_differs'])} installed at another version; SBOM with "
                    f"{sbom['components']} components (CycloneDX {sbom['spec_version']})"),
    })
    assert detector["unpinned"] == ["numpy>=1.0", "flask", "scikit-learn==1.*"]
    assert not audit["unpinned"] and not audit["installed_differs"]
    assert not missing_from_sbom
