"""LOW-2: key material in the artifacts or the logs, writable artifacts, a loose or misplaced signing key.

Paths in, evidence out: the artifact folder, the signing key and the log files are given as paths, so the
same scan runs over any deployed folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from security_tests.contract import Evidence

KEY_PATTERNS = (b"-----BEGIN", b"PRIVATE KEY")


def scan_secrets(paths: list[Path], secrets: list[bytes]) -> dict:
    hits = []
    for path in paths:
        data = path.read_bytes()
        for needle in (*KEY_PATTERNS, *secrets):
            if needle and needle in data:
                hits.append({"file": path.name, "pattern": needle[:10].decode("ascii", "replace") + "…"})
    return {"files_scanned": len(paths), "hits": hits, "secrets_found": bool(hits)}


def key_hygiene(artifacts_dir: Path, signing_key: Path, logs: list[Path], secrets: list[bytes],
                workdir: Path) -> Evidence:
    """Key material in artifacts or logs, writable artifacts, a loose or misplaced signing key; the scan also
    runs over a copy of the artifacts with the key dropped in, where it must find it."""
    result = scan_secrets(sorted(artifacts_dir.iterdir()) + logs, secrets)
    leaky = workdir / "leaky"
    shutil.copytree(artifacts_dir, leaky)
    shutil.copy(signing_key, leaky / "signing-key.pem")
    detector = scan_secrets(sorted(leaky.iterdir()), secrets)
    writable = [p.name for p in artifacts_dir.iterdir() if p.stat().st_mode & 0o222]
    key_mode = oct(signing_key.stat().st_mode & 0o777)
    key_outside = artifacts_dir not in signing_key.parents
    return Evidence(
        attack_succeeded=result["secrets_found"] or bool(writable) or key_mode != "0o600" or not key_outside,
        queries=0,
        summary=(f"{result['files_scanned']} files scanned, {len(result['hits'])} key-material hits; "
                 f"writable artifacts {writable}; signing key mode {key_mode}, outside artifacts "
                 f"{key_outside}; the scan finds {len(detector['hits'])} hits in a copy with the key"),
        measurements={"files_scanned": result["files_scanned"], "hits": len(result["hits"]),
                      "detector_hits_on_leaky_copy": len(detector["hits"])},
        details={"hits": result["hits"], "writable_artifacts": writable, "signing_key_mode": key_mode,
                 "signing_key_outside_artifacts": key_outside})
