"""HIGH-2, the whole family: every file of the folder tampered with at the same size, and every way
around the signature (a key planted beside the model, a release signed by another key, a zeroed
signature, a manifest downgraded to an unsigned format).

Same size matters: a check that compares sizes, or hashes only the files the serving path reads, passes
an appended payload's sibling that changes one value in place. Each tampering here keeps the file
loadable, so where verification is off the service serves the attacker's version, and the measurement
says so.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import struct
from pathlib import Path
from typing import Callable

import joblib
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fraudpipe import signing
from fraudpipe.artifacts import (MANIFEST_FILE, METRICS_FILE, MODEL_FILE, SCALER_FILE, SERVING_FILE,
                                 SIGNATURE_FILE, sha256)
from fraudpipe.compiled import CompiledForest
from security_tests.attacks.client import Client
from security_tests.attacks.tampering import _writable_copy, serve_tampered, trojan_pickle
from security_tests.contract import Evidence

HOUR = 1  # index of hour_of_day in the schema


def _replace_once(data: bytes, old: bytes, new: bytes, what: str) -> bytes:
    at = data.find(old)
    if at < 0 or len(old) != len(new):
        raise AssertionError(f"{what}: bytes to replace not found at the same size")
    return data[:at] + new + data[at + len(old):]


def shifted_forest(data: bytes, hours: float = -7.0) -> bytes:
    """The serving arrays with the hour mean moved: 02:00 scales like a day-time hour."""
    forest = CompiledForest.from_bytes(data)
    mean = forest.mean.copy()
    mean[HOUR] += hours
    return dataclasses.replace(forest, mean=mean).to_bytes()


def shifted_scaler_in_place(data: bytes, hours: float = -7.0) -> bytes:
    """The scaler pickle with its hour mean rewritten inside the raw array bytes: same size, still loads."""
    mean = joblib.load(io.BytesIO(data)).mean_
    moved = mean.copy()
    moved[HOUR] += hours
    return _replace_once(data, mean.tobytes(), moved.tobytes(), SCALER_FILE)


def moved_threshold_in_place(data: bytes) -> bytes:
    """The model pickle with the first tree's root threshold rewritten in place."""
    threshold = joblib.load(io.BytesIO(data)).estimators_[0].tree_.threshold[0]
    return _replace_once(data, struct.pack("<d", threshold), struct.pack("<d", threshold + 3.0), MODEL_FILE)


def changed_digit(data: bytes) -> bytes:
    """metrics.json with one digit changed: what the release claims about the model, silently rewritten."""
    match = re.search(rb"[0-8]", data)
    return data[:match.start()] + bytes([data[match.start()] + 1]) + data[match.end():]


def _attacker_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _rehash_manifest(folder: Path, **changes) -> None:
    """Rewrite the manifest so it matches the tampered files (what an attacker without the key can do)."""
    manifest = json.loads((folder / MANIFEST_FILE).read_bytes())
    manifest["files"] = {p.name: {"sha256": sha256(p.read_bytes()), "size": p.stat().st_size}
                         for p in sorted(folder.iterdir()) if p.name not in (MANIFEST_FILE, SIGNATURE_FILE)}
    manifest.update(changes)
    (folder / MANIFEST_FILE).write_bytes((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def _in_place(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path, Path], None]:
    def tamper(folder: Path, marker: Path) -> None:
        (folder / name).write_bytes(change((folder / name).read_bytes()))
    return tamper


def _trojan(name: str) -> Callable[[Path, Path], None]:
    def tamper(folder: Path, marker: Path) -> None:
        (folder / name).write_bytes(trojan_pickle((folder / name).read_bytes(), marker))
    return tamper


def _model_then(finish: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    def tamper(folder: Path, marker: Path) -> None:
        _in_place(MODEL_FILE, moved_threshold_in_place)(folder, marker)
        _in_place(SERVING_FILE, shifted_forest)(folder, marker)
        finish(folder)
    return tamper


def _signed_by(key: Ed25519PrivateKey) -> Callable[[Path], None]:
    """The attacker's own release: a manifest of the tampered files, signed with the attacker's key."""
    def finish(folder: Path) -> None:
        _rehash_manifest(folder, signer_key_id=signing.key_id(key.public_key()))
        (folder / SIGNATURE_FILE).write_bytes(key.sign((folder / MANIFEST_FILE).read_bytes()))
    return finish


def _planted_key(folder: Path) -> None:
    key = _attacker_key()
    for name in ("trusted-key.pub", "public-key.pem"):
        (folder / name).write_bytes(_public_pem(key))
    _signed_by(key)(folder)


def _zeroed_signature(folder: Path) -> None:
    _rehash_manifest(folder)
    size = (folder / SIGNATURE_FILE).stat().st_size
    (folder / SIGNATURE_FILE).write_bytes(b"\0" * size)


def _downgraded(format_: int, keep_signature: bool) -> Callable[[Path], None]:
    def finish(folder: Path) -> None:
        _rehash_manifest(folder, format=format_)
        if not keep_signature:
            (folder / SIGNATURE_FILE).unlink()
        else:
            (folder / SIGNATURE_FILE).write_bytes(b"")
    return finish


TAMPERINGS: dict[str, Callable[[Path, Path], None]] = {
    "forest.npz hour mean moved": _in_place(SERVING_FILE, shifted_forest),
    "scaler.pkl hour mean moved in place": _in_place(SCALER_FILE, shifted_scaler_in_place),
    "fraud_model.pkl threshold moved in place": _in_place(MODEL_FILE, moved_threshold_in_place),
    "metrics.json digit changed": _in_place(METRICS_FILE, changed_digit),
    "roc_curve.png byte flipped": _in_place("roc_curve.png", lambda d: d[:-20] + bytes([d[-20] ^ 1]) + d[-19:]),
    "unsigned public key dropped in, nothing re-signed": lambda folder, marker: (folder / "trusted-key.pub")
        .write_bytes(_public_pem(_attacker_key())),
    "metrics.json deleted": lambda folder, marker: (folder / METRICS_FILE).unlink(),
    "trojan fraud_model.pkl": _trojan(MODEL_FILE),
    "trojan scaler.pkl": _trojan(SCALER_FILE),
    "public key planted, release re-signed with it": _model_then(_planted_key),
    "release signed by another key": _model_then(lambda folder: _signed_by(_attacker_key())(folder)),
    "signature zeroed, manifest re-hashed": _model_then(_zeroed_signature),
    "signature removed, manifest re-hashed": _model_then(_downgraded(1, keep_signature=False)),
    "signature emptied, manifest re-hashed": _model_then(_downgraded(1, keep_signature=True)),
    "manifest downgraded to format 0, signature removed": _model_then(_downgraded(0, keep_signature=False)),
    "manifest downgraded to format 0, signature emptied": _model_then(_downgraded(0, keep_signature=True)),
    "manifest upgraded to format 2, signature removed": _model_then(_downgraded(2, keep_signature=False)),
}


def tamper_same_size(source: Path, workdir: Path, mode: str, start_service: Callable[[Path], Client]) -> Evidence:
    """Apply one tampering to a copy of the folder and start the service on it."""
    slug = re.sub(r"[^a-z0-9]+", "-", mode.lower())
    folder = _writable_copy(source, workdir / f"tampered-{slug}")
    marker = workdir / f"marker-{slug}"
    before = {p.name: p.stat().st_size for p in folder.iterdir()}
    TAMPERINGS[mode](folder, marker)
    after = {p.name: p.stat().st_size for p in folder.iterdir()}
    resized = sorted(n for n in before if n in after and before[n] != after[n]
                     and n not in (MANIFEST_FILE, SIGNATURE_FILE) and not mode.startswith("trojan"))
    health, prediction, ready = serve_tampered(start_service, folder)
    marker_written = marker.exists()
    verdict = f"the tampered folder was {'SERVED' if ready else 'refused'}"
    code = "RAN" if marker_written else "did not run"
    return Evidence(
        ready or marker_written, queries=2, measurements={"health_status": health.status,
                                                         "predict_status": prediction.status},
        summary=f"{mode}: {verdict} (/health {health.status}, /predict {prediction.status}); attacker code {code}",
        details={"tampering": mode, "resized_files": resized, "files_added": sorted(set(after) - set(before)),
                 "service_ready": ready, "marker_written": marker_written,
                 "fraud_example_label": prediction.body.get("label") if prediction.ok else None})
