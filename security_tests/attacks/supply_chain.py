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
from security_tests.budget import Need, spends
from security_tests.contract import Evidence, NotAssessed
from security_tests.targets.profile import Environment
from security_tests.subprocesses import run_bounded


def _local_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def audit_pins(requirements: Path, installed: Callable[[str], str | None] = _local_version) -> dict:
    """Every requirement of ``requirements`` pinned with ``==`` to one version, and ``installed(name)`` (this
    interpreter's by default) at that version."""
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
        version = installed(requirement.name)
        if version != specs[0].version:
            mismatched.append({"package": name, "pinned": specs[0].version, "installed": version})
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


_LIST_DISTRIBUTIONS = ("import importlib.metadata as m, json, sys; json.dump(sorted({(d.metadata['Name'], d.version) "
                       "for d in m.distributions() if d.metadata['Name']}), sys.stdout)")
MAX_LISTING = 4 << 20


def installed_distributions(python: Path) -> dict[str, str]:
    """What the target's interpreter has installed (canonical name -> version), as it reports it: its answer
    is bounded and checked like any target output; ``-B`` keeps it from writing bytecode into its environment."""
    try:
        done = run_bounded([str(python), "-I", "-B", "-c", _LIST_DISTRIBUTIONS], 60, cap=MAX_LISTING)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotAssessed(f"not assessed: {python} did not list its packages ({exc})") from None
    try:
        listed = json.loads(done.stdout) if done.returncode == 0 else None
    except ValueError:
        listed = None
    if not isinstance(listed, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in listed):
        raise NotAssessed(f"not assessed: {python} did not list its packages (exit {done.returncode})")
    return {canonicalize_name(name): version for name, version in listed}


def cyclonedx_of(distributions: dict[str, str], python: Path) -> dict:
    """A CycloneDX 1.5 SBOM of an environment's installed distributions (name, version, purl)."""
    return {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
            "metadata": {"component": {"type": "application", "name": str(python)}},
            "components": [{"type": "library", "name": name, "version": version, "purl": f"pkg:pypi/{name}@{version}",
                            "bom-ref": f"pkg:pypi/{name}@{version}"}
                           for name, version in sorted(distributions.items())]}


@spends(lambda profile: Need(why="reads the target's requirements and asks its interpreter what it has; sends nothing"))
def target_environment(environment: Environment, sbom_out: Path) -> Evidence:
    """The target's requirements pinned with ``==``, its interpreter's installed versions equal to the pins,
    and a CycloneDX SBOM of that environment written to the assessment's artifacts (written from the
    interpreter's own listing: cyclonedx-py takes ~15 s on a large environment, this a fraction of a second)."""
    installed = installed_distributions(environment.python)
    audit = audit_pins(environment.requirements, lambda name: installed.get(canonicalize_name(name)))
    sbom_out.parent.mkdir(parents=True, exist_ok=True)
    sbom_out.write_text(json.dumps(cyclonedx_of(installed, environment.python), indent=1))
    missing = sorted(name for name in audit["pinned"] if name not in installed)
    return Evidence(
        attack_succeeded=bool(audit["unpinned"] or audit["installed_differs"]), queries=0,
        summary=(f"{audit['requirements']} requirements in {environment.requirements}, {len(audit['unpinned'])} "
                 f"unpinned" + (f" ({', '.join(audit['unpinned'][:4])})" if audit["unpinned"] else "")
                 + f", {len(audit['installed_differs'])} installed by {environment.python} at another version; "
                 f"SBOM of its {len(installed)} packages written to {sbom_out.name}"),
        measurements={"requirements": audit["requirements"], "unpinned": len(audit["unpinned"]),
                      "installed_differs": len(audit["installed_differs"]), "sbom_components": len(installed)},
        details={"unpinned": audit["unpinned"], "installed_differs": audit["installed_differs"],
                 "pinned_not_installed": missing, "sbom": str(sbom_out)})
