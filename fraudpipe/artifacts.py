"""Save, sign, verify and load the model artifacts.

Loading reads each file once, checks its hash against the signed manifest and deserialises those same
bytes, so nothing can change between check and use. Pickles go through an allowlist unpickler: a
file that names any global outside the few scikit-learn/numpy/joblib classes these artifacts need is
refused before that global is resolved, even when the file is signed with the trusted key.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import sklearn
from joblib.numpy_pickle import NumpyUnpickler

from fraudpipe import signing
from fraudpipe.compiled import CompiledForest
from fraudpipe.errors import ArtifactError, ConfigError

MODEL_FILE = "fraud_model.pkl"
SCALER_FILE = "scaler.pkl"
SERVING_FILE = "forest.npz"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
PICKLES = (MODEL_FILE, SCALER_FILE)

ALLOWED_GLOBALS = frozenset({
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.preprocessing._data", "StandardScaler"),
    ("sklearn.tree._classes", "DecisionTreeClassifier"),
    ("sklearn.tree._tree", "Tree"),
})


def library_versions() -> dict[str, str]:
    """The versions a pickle depends on; a mismatch is refused because sklearn pickles are not portable."""
    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "joblib": joblib.__version__}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class AllowlistUnpickler(NumpyUnpickler):
    """joblib's unpickler, admitting only ``ALLOWED_GLOBALS``; joblib passes ``find_class`` to nested pickles."""

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__(name, io.BytesIO(data), ensure_native_byte_order=True)
        self._name = name

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise ArtifactError(self._name, f"refused global {module}.{name}: not on the allowlist")
        return super().find_class(module, name)


def unpickle_allowlisted(name: str, data: bytes):
    try:
        return AllowlistUnpickler(name, data).load()
    except ArtifactError:
        raise
    except Exception as exc:  # a truncated or garbled pickle: any error is a refusal, never a crash
        raise ArtifactError(name, f"cannot be deserialised ({type(exc).__name__}: {exc})") from None


@dataclass
class LoadedArtifacts:
    compiled: CompiledForest
    manifest: dict
    hashes: dict[str, str]
    scaler: object | None = None
    forest: object | None = None
    verified: bool = True

    @property
    def model_sha256(self) -> str:
        return self.hashes.get(SERVING_FILE) or self.hashes.get(MODEL_FILE, "")


def _read_verified(path: Path, public_key) -> tuple[dict, dict[str, bytes]]:
    """Signature, exact file set, sizes and hashes; returns the manifest and every file's bytes."""
    try:
        manifest_bytes = (path / MANIFEST_FILE).read_bytes()
    except OSError:
        raise ArtifactError(MANIFEST_FILE, "missing or unreadable") from None
    try:
        signature = (path / SIGNATURE_FILE).read_bytes()
    except OSError:
        raise ArtifactError(SIGNATURE_FILE, "missing or unreadable") from None
    if not signing.verify(public_key, signature, manifest_bytes):
        raise ArtifactError(MANIFEST_FILE,
                            f"signature does not verify with the trusted key {signing.key_id(public_key)}")
    manifest = json.loads(manifest_bytes)
    expected = dict(manifest["files"])
    present = {entry.name for entry in path.iterdir()} - {MANIFEST_FILE, SIGNATURE_FILE}
    extra, missing = sorted(present - set(expected)), sorted(set(expected) - present)
    if extra:
        raise ArtifactError(extra[0], "file is not in the signed manifest")
    if missing:
        raise ArtifactError(missing[0], "listed in the signed manifest but missing")
    contents = {}
    for name, record in sorted(expected.items()):
        try:
            data = (path / name).read_bytes()
        except OSError as exc:
            raise ArtifactError(name, f"unreadable ({exc.strerror})") from None
        if len(data) != record["size"]:
            raise ArtifactError(name, f"size {len(data)} differs from the signed {record['size']}")
        if sha256(data) != record["sha256"]:
            raise ArtifactError(name, "SHA-256 differs from the signed manifest")
        contents[name] = data
    return manifest, contents


def load_artifacts(path: Path | str, trusted_key: Path | str | None = None, *,
                   pickles: bool = True, public_key=None) -> LoadedArtifacts:
    """Verify and load. ``pickles=False`` is the serving path: it unpickles nothing at all."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(str(path), "not an artifact folder")
    if public_key is None:
        if trusted_key is None:
            raise ConfigError("no trusted key configured (FRAUDPIPE_TRUSTED_KEY)")
        public_key = signing.load_public_key(Path(trusted_key))
    manifest, contents = _read_verified(path, public_key)
    try:
        compiled = CompiledForest.from_bytes(contents[SERVING_FILE])
    except (KeyError, ValueError, OSError) as exc:
        raise ArtifactError(SERVING_FILE, f"not a valid serving forest ({exc})") from None
    hashes = {name: sha256(data) for name, data in contents.items()}
    loaded = LoadedArtifacts(compiled=compiled, manifest=manifest, hashes=hashes)
    if pickles:
        recorded, running = manifest.get("versions", {}), library_versions()
        for library, version in running.items():
            if recorded.get(library) != version:
                raise ArtifactError(MANIFEST_FILE, f"built with {library} {recorded.get(library)}, "
                                                   f"running {version}: retrain or pin the same version")
        loaded.scaler = unpickle_allowlisted(SCALER_FILE, contents[SCALER_FILE])
        loaded.forest = unpickle_allowlisted(MODEL_FILE, contents[MODEL_FILE])
    return loaded


def load_unverified(path: Path | str) -> LoadedArtifacts:
    """The acquired service's loader: plain ``joblib.load``, no checks. Kept for the inherited profile."""
    path = Path(path)
    forest = joblib.load(path / MODEL_FILE)
    scaler = joblib.load(path / SCALER_FILE)
    hashes = {name: sha256((path / name).read_bytes()) for name in PICKLES}
    return LoadedArtifacts(compiled=CompiledForest.from_sklearn(scaler, forest), manifest={},
                           hashes=hashes, scaler=scaler, forest=forest, verified=False)


def _manifest(contents: dict[str, bytes], versions: dict, provenance: dict, key_id: str) -> bytes:
    manifest = {
        "format": 1,
        "signer_key_id": key_id,
        "files": {name: {"sha256": sha256(data), "size": len(data)} for name, data in sorted(contents.items())},
        "versions": versions,
        "provenance": provenance,
    }
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def check_output_folder(out: Path | str) -> Path:
    """Refuse an output path that is a file, before any work is done or anything is written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    return out


def write_signed(out: Path, contents: dict[str, bytes], private_key, versions: dict, provenance: dict) -> None:
    """Write a complete signed folder beside ``out`` and swap it in, so a failure leaves ``out`` as it was."""
    out = check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = _manifest(contents, versions, provenance, signing.key_id(private_key.public_key()))
        files = dict(contents, **{MANIFEST_FILE: manifest, SIGNATURE_FILE: private_key.sign(manifest)})
        for name, data in files.items():
            target = staging / name
            target.write_bytes(data)
            os.chmod(target, 0o444)
        os.chmod(staging, 0o755)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, retired / "previous")
            os.replace(staging, out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_artifacts(out: Path, trained, metrics: dict, charts: dict[str, bytes], private_key,
                   provenance: dict) -> None:
    pickled = {}
    for name, obj in ((MODEL_FILE, trained.forest), (SCALER_FILE, trained.scaler)):
        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        pickled[name] = buffer.getvalue()
    compiled = CompiledForest.from_sklearn(trained.scaler, trained.forest)
    contents = dict(pickled, **charts)
    contents[SERVING_FILE] = compiled.to_bytes()
    contents[METRICS_FILE] = (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode()
    write_signed(out, contents, private_key, library_versions(), provenance)


def resign(path: Path, private_key) -> dict:
    """A legitimate re-release: hash what the folder holds now and sign it, keeping versions and provenance."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: not a folder")
    try:
        old = json.loads((path / MANIFEST_FILE).read_bytes())
    except (OSError, ValueError):
        old = {}
    contents = {entry.name: entry.read_bytes() for entry in sorted(path.iterdir())
                if entry.is_file() and entry.name not in (MANIFEST_FILE, SIGNATURE_FILE)}
    write_signed(path, contents, private_key, old.get("versions", library_versions()),
                 old.get("provenance", {}))
    return {name: sha256(data) for name, data in contents.items()}
