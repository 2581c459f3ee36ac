"""HIGH-2: tamper with the artifacts at rest, then let the service load them.

Three tamperings: bytes appended to the model file (joblib ignores them, so only a hash notices); a
trojaned model, a pickle that writes a marker file when unpickled and then returns the genuine model,
so the service keeps answering normally while the attacker's code has run; and a doctored scaler
whose hour mean is moved so that a 02:00 transaction is scaled like a day-time one.
"""

from __future__ import annotations

import base64
import os
import pickle
import shutil
from pathlib import Path
from typing import Callable

import io

import joblib

from fraudpipe.artifacts import MODEL_FILE, SCALER_FILE
from fraudpipe.data import FRAUD_EXAMPLE
from security_tests.attacks.client import Answer, Client, exchange
from security_tests.contract import Evidence


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


def shifted_scaler(original: bytes, hours: float = -7.0) -> bytes:
    """The genuine scaler with the hour mean moved: the boundary moves without touching the model file."""
    scaler = joblib.load(io.BytesIO(original))
    scaler.mean_ = scaler.mean_.copy()
    scaler.mean_[1] += hours
    buffer = io.BytesIO()
    joblib.dump(scaler, buffer)
    return buffer.getvalue()


def _writable_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for entry in target.iterdir():
        os.chmod(entry, 0o644)
    return target


def serve_tampered(start_service: Callable[[Path], Client], folder: Path) -> tuple[Answer, Answer, bool]:
    """Start the service on a tampered folder: its /health, its answer to the fraud example, and whether it serves."""
    client = start_service(folder)
    health, prediction = client.get("/health"), client.predict(FRAUD_EXAMPLE)
    return health, prediction, health.status == 200


def tamper_and_load(source: Path, workdir: Path, mode: str, start_service: Callable[[Path], Client]) -> Evidence:
    """``mode`` is ``append``, ``trojan`` or ``scaler``; returns what the service did with the tampered folder."""
    folder = _writable_copy(source, workdir / f"tampered-{mode}")
    marker = workdir / f"marker-{mode}"
    target = folder / (SCALER_FILE if mode == "scaler" else MODEL_FILE)
    original = target.read_bytes()
    if mode == "append":
        target.write_bytes(original + b"TAMPERED_PAYLOAD")
    elif mode == "trojan":
        target.write_bytes(trojan_pickle(original, marker))
    elif mode == "scaler":
        target.write_bytes(shifted_scaler(original))
    else:
        raise ValueError(f"unknown tampering {mode!r}")
    health, prediction, loaded = serve_tampered(start_service, folder)
    marker_written = marker.exists()
    return Evidence(
        attack_succeeded=loaded or marker_written, queries=2,
        summary=(f"{mode}: tampered {target.name} {'LOADED' if loaded else 'refused'} "
                 f"(/health {health.status}, /predict {prediction.status}"
                 + (f", 02:00 fraud answered {prediction.body.get('label')}" if prediction.ok else "")
                 + f"); attacker code {'RAN (marker written)' if marker_written else 'did not run'}"),
        samples=[exchange("The fraud example sent to the tampered service", FRAUD_EXAMPLE, prediction)],
        measurements={"bytes_before": len(original), "bytes_after": target.stat().st_size,
                      "predict_status": prediction.status},
        details={"tampering": mode, "tampered_file": target.name, "health": health.body, "service_ready": loaded,
                 "marker_written": marker_written,
                 "fraud_example_label": prediction.body.get("label") if prediction.ok else None})
