"""HIGH-2, the whole family: tamper with the released artifacts at rest, then let the service load them.

Two kinds of tampering, each kept loadable so that where verification is off the service serves the
attacker's version and the measurement says so:

- payloads that run or act at load: bytes appended to the model file (joblib ignores them, so only a hash
  notices), a trojaned model or scaler (a pickle that writes a marker file when unpickled and then returns
  the genuine object, so the service keeps answering normally while the attacker's code has run), and a
  re-pickled scaler whose hour mean is moved so the positive example is scaled like a day-time one;
- same-size changes to every file of the folder and every way around the signature (a key planted beside
  the model, a release signed by another key, a zeroed signature, a manifest downgraded to an unsigned
  format). Same size matters: a check that compares sizes, or hashes only the files the serving path
  reads, passes a change of one value in place.

The attack takes the released folder, a scratch folder and ``serve(folder) -> Client``: how the target is
started on a folder is the caller's business, what it answered is the evidence.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import pickle
import re
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import joblib
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fraudpipe import signing
from fraudpipe.artifacts import (MANIFEST_FILE, METRICS_FILE, MODEL_FILE, SCALER_FILE, SERVING_FILE,
                                 SIGNATURE_FILE, sha256)
from fraudpipe.compiled import CompiledForest
from security_tests.attacks.client import Client, exchange
from security_tests.contract import Evidence
from security_tests.targets.profile import TargetProfile

HOUR = 1  # index of hour_of_day in fraudpipe's schema, where the scaler and the serving arrays keep it
Tampering = Callable[[Path, Path], None]  # (folder, marker file the attacker's code writes when it runs)


class _Trojan:
    def __init__(self, original: bytes, marker: Path) -> None:
        self.original, self.marker = original, marker

    def __reduce__(self):
        code = (f"(__import__('pathlib').Path({str(self.marker)!r}).write_text('code ran at unpickling'), "
                f"__import__('joblib').load(__import__('io').BytesIO(__import__('base64').b64decode("
                f"{base64.b64encode(self.original).decode()!r}))))[1]")
        return (eval, (code,))


def trojan_pickle(original: bytes, marker: Path) -> bytes:
    """A pickle that writes ``marker`` when loaded and then returns the object ``original`` pickles."""
    return pickle.dumps(_Trojan(original, marker), protocol=4)


def shifted_scaler(original: bytes, hours: float = -7.0) -> bytes:
    """The genuine scaler re-pickled with the hour mean moved: the boundary moves without touching the model."""
    scaler = joblib.load(io.BytesIO(original))
    scaler.mean_ = scaler.mean_.copy()
    scaler.mean_[HOUR] += hours
    buffer = io.BytesIO()
    joblib.dump(scaler, buffer)
    return buffer.getvalue()


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


def _in_place(name: str, change: Callable[[bytes], bytes]) -> Tampering:
    def tamper(folder: Path, marker: Path) -> None:
        (folder / name).write_bytes(change((folder / name).read_bytes()))
    return tamper


def _trojan(name: str) -> Tampering:
    def tamper(folder: Path, marker: Path) -> None:
        (folder / name).write_bytes(trojan_pickle((folder / name).read_bytes(), marker))
    return tamper


def _model_then(finish: Callable[[Path], None]) -> Tampering:
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


LOAD_TIME_PAYLOADS: dict[str, Tampering] = {
    "append": lambda folder, marker: (folder / MODEL_FILE).write_bytes(
        (folder / MODEL_FILE).read_bytes() + b"TAMPERED_PAYLOAD"),
    "trojan": _trojan(MODEL_FILE),
    "trojan scaler.pkl": _trojan(SCALER_FILE),
    "scaler": _in_place(SCALER_FILE, shifted_scaler),
}
"""Tamperings that change a file's size to run code or move the boundary at load."""

SAME_SIZE: dict[str, Tampering] = {
    "forest.npz hour mean moved": _in_place(SERVING_FILE, shifted_forest),
    "scaler.pkl hour mean moved in place": _in_place(SCALER_FILE, shifted_scaler_in_place),
    "fraud_model.pkl threshold moved in place": _in_place(MODEL_FILE, moved_threshold_in_place),
    "metrics.json digit changed": _in_place(METRICS_FILE, changed_digit),
    "roc_curve.png byte flipped": _in_place("roc_curve.png", lambda d: d[:-20] + bytes([d[-20] ^ 1]) + d[-19:]),
    "unsigned public key dropped in, nothing re-signed": lambda folder, marker: (folder / "trusted-key.pub")
        .write_bytes(_public_pem(_attacker_key())),
    "metrics.json deleted": lambda folder, marker: (folder / METRICS_FILE).unlink(),
    "public key planted, release re-signed with it": _model_then(_planted_key),
    "release signed by another key": _model_then(lambda folder: _signed_by(_attacker_key())(folder)),
    "signature zeroed, manifest re-hashed": _model_then(_zeroed_signature),
    "signature removed, manifest re-hashed": _model_then(_downgraded(1, keep_signature=False)),
    "signature emptied, manifest re-hashed": _model_then(_downgraded(1, keep_signature=True)),
    "manifest downgraded to format 0, signature removed": _model_then(_downgraded(0, keep_signature=False)),
    "manifest downgraded to format 0, signature emptied": _model_then(_downgraded(0, keep_signature=True)),
    "manifest upgraded to format 2, signature removed": _model_then(_downgraded(2, keep_signature=False)),
}
"""Tamperings that keep every data file's size (the manifest and signature are what they rewrite)."""

TAMPERINGS: dict[str, Tampering] = {**LOAD_TIME_PAYLOADS, **SAME_SIZE}


def writable_copy(source: Path, target: Path) -> Path:
    """A copy of a (read-only) release the attacker can write to."""
    shutil.copytree(source, target)
    for entry in target.iterdir():
        os.chmod(entry, 0o644)
    return target


def tamper_and_serve(source: Path, workdir: Path, mode: str, serve: Callable[[Path], Client],
                     profile: TargetProfile) -> Evidence:
    """Apply one tampering to a copy of the release in ``source`` and start the target on it with ``serve``.

    The attack succeeds if the tampered folder is served (health answers 200) or the attacker's code ran.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", mode.lower())
    folder = writable_copy(source, workdir / f"tampered-{slug}")
    marker = workdir / f"marker-{slug}"
    before = {p.name: p.stat().st_size for p in folder.iterdir()}
    TAMPERINGS[mode](folder, marker)
    after = {p.name: p.stat().st_size for p in folder.iterdir()}
    resized = sorted(n for n in before if n in after and before[n] != after[n] and n not in (MANIFEST_FILE,
                                                                                              SIGNATURE_FILE))
    client = serve(folder)
    health = client.get(profile.health_path or "/health")
    prediction = client.predict(profile.positive_example)
    ready, code_ran = health.status == 200, marker.exists()
    answered = (f", the positive example answered {'positive' if prediction.positive else 'NEGATIVE'}"
                if prediction.ok else "")
    return Evidence(
        ready or code_ran, queries=2,
        summary=(f"{mode}: the tampered folder was {'SERVED' if ready else 'refused'} (health {health.status}, "
                 f"predict {prediction.status}{answered}); attacker code {'RAN' if code_ran else 'did not run'}"),
        samples=[exchange("The positive example sent to the tampered service", profile.positive_example, prediction)],
        measurements={"health_status": health.status, "predict_status": prediction.status},
        details={"tampering": mode, "resized_files": resized, "files_added": sorted(set(after) - set(before)),
                 "service_ready": ready, "marker_written": code_ran, "health": health.body,
                 "positive_example_answered_positive": prediction.positive})
