"""MED-4: what the service runs is exactly what was pinned, and a model built elsewhere is refused."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from fraudpipe import signing
from fraudpipe.artifacts import MANIFEST_FILE, resign
from security_tests.contract import Evidence


def audit_pins(requirements: Path) -> dict:
    unpinned, mismatched, pinned = [], [], {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            unpinned.append(line)
            continue
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            unpinned.append(line)
            continue
        name = canonicalize_name(requirement.name)
        pinned[name] = specs[0].version
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != specs[0].version:
            mismatched.append({"package": name, "pinned": specs[0].version, "installed": installed})
    return {"requirements": len(pinned) + len(unpinned), "unpinned": unpinned, "installed_differs": mismatched,
            "pinned": pinned}


def write_sbom(out: Path) -> dict:
    """A CycloneDX SBOM of the running environment, written with cyclonedx-py."""
    tool = shutil.which("cyclonedx-py") or str(Path(sys.executable).with_name("cyclonedx-py"))
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([tool, "environment", "--output-format", "JSON", "--output-file", str(out), sys.executable],
                   check=True, capture_output=True, timeout=120)
    document = json.loads(out.read_text())
    components = {canonicalize_name(c["name"]): c.get("version") for c in document.get("components", [])}
    return {"sbom": str(out), "spec_version": document.get("specVersion"), "components": len(components),
            "component_versions": components}


def pinned_environment(requirements: Path, sbom_out: Path) -> Evidence:
    """Every requirement pinned exactly, installed at its pin, and listed in a fresh SBOM."""
    audit = audit_pins(requirements)
    sbom = write_sbom(sbom_out)
    missing = sorted(name for name in audit["pinned"] if name not in sbom["component_versions"])
    return Evidence(
        attack_succeeded=bool(audit["unpinned"] or audit["installed_differs"] or missing), queries=0,
        summary=(f"{audit['requirements']} requirements, {len(audit['unpinned'])} unpinned, "
                 f"{len(audit['installed_differs'])} installed at another version, {len(missing)} missing from "
                 f"the SBOM of {sbom['components']} components (CycloneDX {sbom['spec_version']})"),
        measurements={"requirements": audit["requirements"], "sbom_components": sbom["components"]},
        details={"unpinned": audit["unpinned"], "installed_differs": audit["installed_differs"],
                 "pinned_missing_from_sbom": missing, "sbom": sbom["sbom"], "sbom_spec_version": sbom["spec_version"]})


def foreign_version_artifacts(source: Path, workdir: Path, signing_key: Path, library: str = "scikit-learn",
                              version: str = "0.24.2") -> Path:
    """A copy of the artifacts whose signed manifest says they were built with another library version."""
    folder = workdir / "foreign-version"
    shutil.copytree(source, folder)
    for entry in folder.iterdir():
        entry.chmod(0o644)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["versions"][library] = version
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    resign(folder, signing.load_private_key(signing_key), reattest_provenance=True)
    return folder


def load_foreign_build(folder: Path, load: Callable[[Path], object]) -> Evidence:
    try:
        load(folder)
    except Exception as exc:  # the refusal is the result
        return Evidence(attack_succeeded=False, queries=0,
                        summary=f"artifacts recorded with another scikit-learn were refused: {exc}",
                        details={"loaded": False, "refusal": re.sub(r"\s+", " ", str(exc))[:300]})
    return Evidence(attack_succeeded=True, queries=0, details={"loaded": True},
                    summary="artifacts recorded with another scikit-learn version loaded without a check")
