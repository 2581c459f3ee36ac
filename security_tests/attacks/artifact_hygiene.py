"""LOW-2: key material in the artifacts or the logs, writable artifacts, a loose or misplaced signing key;
and what the service tells a caller without a key about itself (its profile, model hash, not-ready reasons).

Paths in, evidence out: the artifact folder, the signing key and the log files are given as paths, so the
same scan runs over any deployed folder.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

from security_tests.attacks.artifact_integrity import entries
from security_tests.budget import Need, spends
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


ANONYMOUS_REQUESTS = [(method, path) for path in ("/health", "/openapi.json", "/predict", "/", "/debug", "/health/")
                      for method in ("GET", "HEAD", "OPTIONS", "POST")]
"""Every served route and a few that are not, with every method an anonymous caller might try."""


def operator_details(health: dict) -> list[str]:
    """What ``/health`` tells an authenticated operator beyond ready or not: each value that identifies
    something (the profile, the model hash prefix, every not-ready reason). Field names are left out: the
    API document may describe the operator's view without showing any of it."""
    details = []
    for name, value in health.items() if isinstance(health, dict) else ():
        if name == "status":
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and len(item) >= 4:
                details.append(item)
    return details


def _answer_text(answer) -> str:
    return json.dumps(answer.body) + json.dumps(answer.headers)


def anonymous_disclosure(keyless, operator, requests: list[tuple[str, str]] = ANONYMOUS_REQUESTS) -> Evidence:
    """Each request without a key, searched for what the operator's ``/health`` shows (``operator``: a client
    with a valid key). The same search over the operator's own answer must find them, or it proves nothing."""
    seen = operator.get("/health", operator.credentials())
    details = operator_details(seen.body)
    shown = {f"{method} {path}": [d for d in details if d in _answer_text(keyless.request(method, path))]
             for method, path in requests}
    leaked = {request: found for request, found in shown.items() if found}
    seen_by_operator = [d for d in details if d in _answer_text(seen)]
    examples = "; ".join(f"{request}: {', '.join(found[:3])}" for request, found in list(leaked.items())[:3])
    return Evidence(
        attack_succeeded=bool(leaked), queries=len(requests) + 1,
        summary=(f"{len(leaked)} of {len(requests)} anonymous requests revealed operator details"
                 + (f" ({examples})" if leaked else f"; the operator's /health shows {len(seen_by_operator)} of them")),
        measurements={"anonymous_requests": len(requests), "revealing": len(leaked),
                      "details_on_the_operator_answer": len(seen_by_operator)},
        details={"operator_details": details, "revealed": leaked})


CREDENTIAL_PATTERNS = (b"PRIVATE KEY-----", b"aws_secret_access_key", b"-----BEGIN PGP PRIVATE", b"x-api-key:",
                       b"client_secret")
"""What marks key or credential material in a file (matched without regard to case)."""
SCAN_BYTES = 64 << 20
"""Bytes read of each file at most (a model folder's weights can be large; keys sit in small files)."""


def _holds_credentials(path: Path) -> list[str]:
    found: set[str] = set()
    tail = b""
    with open(path, "rb") as handle:
        read = 0
        while read < SCAN_BYTES and (chunk := handle.read(1 << 20)):
            window = (tail + chunk).lower()
            found |= {p.decode() for p in CREDENTIAL_PATTERNS if p.lower() in window}
            tail, read = chunk[-64:], read + len(chunk)
    return sorted(found)


@spends(lambda profile: Need(why="reads the target's model folder; sends nothing"))
def folder_hygiene(folder: Path) -> Evidence:
    """The target's model folder, read only: no file or folder in it writable by group or others, no private
    key or credential material in any file; links are reported, never followed."""
    writable, credentials, links, scanned = [], {}, [], 0
    for path in entries(folder):
        mode = path.lstat().st_mode
        name = str(path.relative_to(folder))
        if stat.S_ISLNK(mode):
            links.append(name)
            continue
        if mode & 0o022:
            writable.append(f"{name} ({oct(mode & 0o777)})")
        if stat.S_ISREG(mode):
            scanned += 1
            if found := _holds_credentials(path):
                credentials[name] = found
    return Evidence(
        attack_succeeded=bool(writable or credentials), queries=0,
        summary=(f"{scanned} files in {folder}: {len(writable)} writable by group or others"
                 + (f" ({', '.join(writable[:3])})" if writable else "")
                 + f", {len(credentials)} with key or credential material"
                 + (f" ({', '.join(credentials)})" if credentials else "")),
        measurements={"files_scanned": scanned, "writable_by_others": len(writable),
                      "credential_files": len(credentials)},
        details={"writable": writable, "credentials": credentials, "links_not_followed": links})
