"""Save, sign, verify and load the model artifacts.

Loading reads each file once, checks its hash against the signed manifest and deserialises those same
bytes, so nothing can change between check and use. A file is opened without following links or
blocking (a FIFO cannot hang the loader) and must be a regular file of exactly the signed size before a
byte is read. A signature proves who shipped a release, not that it is sound, so the manifest's shape,
the serving forest's structure and (for ``verify``) the pickled classes are checked as well. Pickles go through an allowlist unpickler: a
file that names any global outside the few scikit-learn/numpy/joblib classes these artifacts need is
refused before that global is resolved, even when the file is signed with the trusted key.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import joblib
import numpy as np
import sklearn
from joblib.numpy_pickle import NumpyUnpickler

from fraudpipe import signing
from fraudpipe.compiled import ARRAY_NAMES, CompiledForest
from fraudpipe.errors import ArtifactError, ConfigError

MODEL_FILE = "fraud_model.pkl"
SCALER_FILE = "scaler.pkl"
SERVING_FILE = "forest.npz"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
PICKLES = (MODEL_FILE, SCALER_FILE)
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
SIGNATURE_BYTES = 64  # Ed25519
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_SHA256 = re.compile(r"[0-9a-f]{64}")

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


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def library_versions() -> dict[str, str]:
    """The versions a pickle depends on; a mismatch is refused because sklearn pickles are not portable."""
    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "joblib": joblib.__version__}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class AllowlistUnpickler(NumpyUnpickler):
    """joblib's unpickler, admitting only ``ALLOWED_GLOBALS``; joblib passes ``find_class`` to nested pickles."""

    def __init__(self, name: str, data: bytes) -> None:
        self.buffer = io.BytesIO(data)
        super().__init__(name, self.buffer, ensure_native_byte_order=True)
        self._name = name

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise ArtifactError(self._name, f"refused global {module}.{name}: not on the allowlist")
        return super().find_class(module, name)


def unpickle_allowlisted(name: str, data: bytes) -> object:
    """The whole byte string must be the one pickle: bytes after its end are a smuggled second payload."""
    unpickler = AllowlistUnpickler(name, data)
    try:
        obj = unpickler.load()
    except ArtifactError:
        raise
    except Exception as exc:  # a truncated or garbled pickle: any error is a refusal, never a crash
        raise ArtifactError(name, f"cannot be deserialised ({type(exc).__name__}: {exc})") from None
    if unpickler.buffer.tell() != len(data):
        raise ArtifactError(name, f"{len(data) - unpickler.buffer.tell()} bytes follow the end of the pickle")
    return obj


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


def open_regular(folder_fd: int, name: str) -> tuple[int, os.stat_result]:
    """Open ``name`` inside the folder without following a link or blocking on a FIFO, and insist on a
    regular file, so nothing but a plain file's bytes is ever read."""
    reasons = {errno.ELOOP: "is a symbolic link", errno.ENOENT: "missing"}
    try:
        mode = os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode  # no open() of a device at all
        if stat.S_ISLNK(mode) or not stat.S_ISREG(mode):
            raise ArtifactError(name, "is a symbolic link" if stat.S_ISLNK(mode) else "not a regular file")
        fd = os.open(name, _OPEN_FLAGS, dir_fd=folder_fd)
    except OSError as exc:
        raise ArtifactError(name, reasons.get(exc.errno, f"unreadable ({exc.strerror})")) from None
    info = os.fstat(fd)  # again on the descriptor: the entry may have been swapped since the lstat
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise ArtifactError(name, "not a regular file" if not stat.S_ISREG(info.st_mode) else
                            f"has {info.st_nlink} hard links: a file outside the release could change it")
    return fd, info


def read_regular(folder_fd: int, name: str, size: int | None = None, limit: int = MAX_FILE_BYTES) -> bytes:
    """Exactly ``size`` bytes (or at most ``limit``), checked with fstat before a byte is read; reads at
    most one byte more, so a file that grows after the check is refused, not read in full."""
    fd, info = open_regular(folder_fd, name)
    try:
        if size is not None and info.st_size != size:
            raise ArtifactError(name, f"size {info.st_size} differs from the signed {size}")
        if info.st_size > limit:
            raise ArtifactError(name, f"larger than {limit} bytes")
        expected = info.st_size
        chunks, remaining = [], expected + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) != expected:
        raise ArtifactError(name, "changed size while being read")
    return data


def parse_manifest(data: bytes) -> dict:
    """Refuse a manifest of the wrong shape with one reason, signed or not, instead of a KeyError later."""
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError):
        raise ArtifactError(MANIFEST_FILE, "not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != 1:
        raise ArtifactError(MANIFEST_FILE, "not a format-1 manifest object")
    files = manifest.get("files")
    if not isinstance(files, dict) or not {SERVING_FILE, *PICKLES} <= set(files):
        raise ArtifactError(MANIFEST_FILE, f"'files' must list at least {SERVING_FILE} and {', '.join(PICKLES)}")
    for name, record in files.items():
        if name in (MANIFEST_FILE, SIGNATURE_FILE, ".", "..") or os.path.basename(name) != name or "\0" in name:
            raise ArtifactError(MANIFEST_FILE, f"{name!r} is not a plain file name")
        if (not isinstance(record, dict) or not isinstance(record.get("sha256"), str)
                or not _SHA256.fullmatch(record["sha256"]) or type(record.get("size")) is not int
                or not 0 <= record["size"] <= MAX_FILE_BYTES):
            raise ArtifactError(MANIFEST_FILE, f"entry for {name!r} needs a sha256 hex digest and a size")
    for key in ("versions", "provenance"):
        if not isinstance(manifest.get(key), dict):
            raise ArtifactError(MANIFEST_FILE, f"'{key}' must be an object")
    return manifest


def _read_verified(folder_fd: int, public_key) -> tuple[dict, dict[str, bytes]]:
    """Signature, exact file set, sizes and hashes; returns the manifest and every file's bytes."""
    manifest_bytes = read_regular(folder_fd, MANIFEST_FILE, limit=MAX_MANIFEST_BYTES)
    signature = read_regular(folder_fd, SIGNATURE_FILE, limit=SIGNATURE_BYTES)
    if not signing.verify(public_key, signature, manifest_bytes):
        raise ArtifactError(MANIFEST_FILE,
                            f"signature does not verify with the trusted key {signing.key_id(public_key)}")
    manifest = parse_manifest(manifest_bytes)
    expected = manifest["files"]
    present = set(os.listdir(folder_fd)) - {MANIFEST_FILE, SIGNATURE_FILE}
    extra, missing = sorted(present - set(expected)), sorted(set(expected) - present)
    if extra:
        raise ArtifactError(extra[0], "file is not in the signed manifest")
    if missing:
        raise ArtifactError(missing[0], "listed in the signed manifest but missing")
    contents = {}
    for name, record in sorted(expected.items()):
        data = read_regular(folder_fd, name, size=record["size"])
        if sha256(data) != record["sha256"]:
            raise ArtifactError(name, "SHA-256 differs from the signed manifest")
        contents[name] = data
    return manifest, contents


def _open_folder(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        raise ArtifactError(str(path), "not an artifact folder") from None


def check_fitted(scaler, forest, compiled: CompiledForest) -> None:
    """The pickles must be the fitted classes the pipeline writes and compile to the shipped serving
    forest; otherwise ``verify`` would pass a release whose two models disagree."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if type(scaler) is not StandardScaler or not all(hasattr(scaler, a) for a in ("mean_", "scale_")):
        raise ArtifactError(SCALER_FILE, "not a fitted StandardScaler")
    estimators = getattr(forest, "estimators_", None)
    if (type(forest) is not RandomForestClassifier or not isinstance(estimators, list) or not estimators
            or not all(type(e) is DecisionTreeClassifier and hasattr(e, "tree_") for e in estimators)
            or not np.array_equal(getattr(forest, "classes_", None), [0, 1])):
        raise ArtifactError(MODEL_FILE, "not a fitted RandomForestClassifier over the labels 0 and 1")
    try:
        rebuilt = CompiledForest.from_sklearn(scaler, forest)
    except Exception as exc:  # any inconsistency inside the fitted objects is a refusal
        raise ArtifactError(MODEL_FILE, f"cannot be compiled ({type(exc).__name__}: {exc})") from None
    for name in ARRAY_NAMES:
        mine, shipped = getattr(rebuilt, name), getattr(compiled, name)
        if mine.dtype != shipped.dtype or not np.array_equal(mine, shipped):
            raise ArtifactError(SERVING_FILE, f"differs from the forest compiled from the signed pickles ({name})")


def load_artifacts(path: Path | str, trusted_key: Path | str | None = None, *,
                   pickles: bool = True, public_key=None) -> LoadedArtifacts:
    """Verify and load. ``pickles=False`` is the serving path: it unpickles nothing at all."""
    folder_fd = _open_folder(Path(path))
    try:
        if public_key is None:
            if trusted_key is None:
                raise ConfigError("no trusted key configured (FRAUDPIPE_TRUSTED_KEY)")
            public_key = signing.load_public_key(Path(trusted_key))
        manifest, contents = _read_verified(folder_fd, public_key)
    finally:
        os.close(folder_fd)
    try:
        compiled = CompiledForest.from_bytes(contents[SERVING_FILE])
    except Exception as exc:  # numpy and zipfile raise many kinds on a malformed archive: all are refusals
        raise ArtifactError(SERVING_FILE, f"not a valid serving forest ({exc})") from None
    hashes = {name: sha256(data) for name, data in contents.items()}
    loaded = LoadedArtifacts(compiled=compiled, manifest=manifest, hashes=hashes)
    if pickles:
        recorded, running = manifest["versions"], library_versions()
        for library, version in running.items():
            if recorded.get(library) != version:
                raise ArtifactError(MANIFEST_FILE, f"built with {library} {recorded.get(library)}, "
                                                   f"running {version}: retrain or pin the same version")
        loaded.scaler = unpickle_allowlisted(SCALER_FILE, contents[SCALER_FILE])
        loaded.forest = unpickle_allowlisted(MODEL_FILE, contents[MODEL_FILE])
        check_fitted(loaded.scaler, loaded.forest, compiled)
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


def is_release(folder: Path) -> bool:
    """A folder this program wrote: a manifest of the right shape listing exactly the other regular files,
    plus the signature. The signature is not checked here: the folder is kept, not deleted, so a release
    signed with an older key can still be replaced."""
    try:
        folder_fd = _open_folder(folder)
    except ArtifactError:
        return False
    try:
        files = parse_manifest(read_regular(folder_fd, MANIFEST_FILE, limit=MAX_MANIFEST_BYTES))["files"]
        expected = {*files, MANIFEST_FILE, SIGNATURE_FILE}
        return set(os.listdir(folder_fd)) == expected and all(
            stat.S_ISREG(os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode) for name in expected)
    except (ArtifactError, OSError):
        return False
    finally:
        os.close(folder_fd)


def check_output_folder(out: Path | str, require_release: bool = True) -> Path:
    """Refuse, before any work is done, an output path whose replacement could lose a file this program
    did not write: a file, a link, or a non-empty folder that is not a fraudpipe release."""
    out = Path(out)
    if out.is_symlink():
        raise ConfigError(f"{out}: is a symbolic link; give the folder it points to")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if require_release and out.is_dir() and any(out.iterdir()) and not is_release(out):
        raise ConfigError(f"{out}: not empty and not a fraudpipe release (a signed manifest listing exactly "
                          "its files); refusing to replace it: choose a new or empty folder")
    return out


def keep_previous(out: Path) -> Path:
    """Move the release being replaced to ``<name>.previous-<UTC time>`` beside it; never overwrite.

    The name is claimed with an exclusive mkdir first, so a folder someone else made is never replaced.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    for attempt in range(100):
        target = out.with_name(f"{out.name}.previous-{stamp}" + (f"-{attempt}" if attempt else ""))
        try:
            os.mkdir(target, 0o755)
        except FileExistsError:
            continue
        os.replace(out, target)  # a folder may be renamed over the empty folder just claimed
        return target
    raise ConfigError(f"{out}: could not find a free name to keep the previous release under")


def write_signed(out: Path, contents: dict[str, bytes], private_key, versions: dict, provenance: dict,
                 require_release: bool = True) -> Path | None:
    """Write a complete signed folder beside ``out`` and swap it in, so a failure leaves ``out`` as it was.

    Returns where the replaced folder was kept (``None`` when there was none): nothing is deleted.
    """
    out = check_output_folder(out, require_release)
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
        previous = keep_previous(out) if out.exists() else None
        try:
            os.replace(staging, out)
        except BaseException:
            if previous is not None:
                os.replace(previous, out)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return previous


def save_artifacts(out: Path, trained, metrics: dict, charts: dict[str, bytes], private_key,
                   provenance: dict) -> Path | None:
    """Returns where the replaced release was kept, if there was one."""
    pickled = {}
    for name, obj in ((MODEL_FILE, trained.forest), (SCALER_FILE, trained.scaler)):
        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        pickled[name] = buffer.getvalue()
    compiled = CompiledForest.from_sklearn(trained.scaler, trained.forest)
    contents = dict(pickled, **charts)
    contents[SERVING_FILE] = compiled.to_bytes()
    contents[METRICS_FILE] = (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode()
    return write_signed(out, contents, private_key, library_versions(), provenance)


def _plain_files(folder_fd: int) -> dict[str, bytes]:
    """Every entry must be a regular file: a planted link would carry its target (say, the private key)
    into a signed release, and a FIFO, device or folder has no bytes to sign."""
    return {name: read_regular(folder_fd, name) for name in sorted(os.listdir(folder_fd))}


def _attested(contents: dict[str, bytes], public_key, reattest: bool, announce: Callable[[str], None],
              path: Path) -> dict:
    """The manifest whose versions and provenance the new signature vouches for.

    Carried over only from a manifest that verifies under the trusted key: an edited, unsigned
    provenance (say, a forged drift profile) must not be laundered into a signed one by accident.
    """
    manifest_bytes, signature = contents.get(MANIFEST_FILE), contents.get(SIGNATURE_FILE, b"")
    if manifest_bytes is not None and public_key is not None and signing.verify(public_key, signature,
                                                                                 manifest_bytes):
        verified = parse_manifest(manifest_bytes)
        changed = _differs_from(verified, contents)
        if not changed or reattest:
            return verified
        raise ArtifactError(changed[0], f"differs from the signed manifest ({', '.join(changed)} changed or "
                                        "removed); the recorded provenance does not describe this model. Rebuild "
                                        "with train, or vouch anew with --reattest-provenance")
    if not reattest:
        raise ArtifactError(MANIFEST_FILE, "missing, unsigned or not signed by the trusted key; sign re-signs "
                                           "only a verified release (--reattest-provenance to vouch anew)")
    try:
        old = json.loads(manifest_bytes or b"{}")
    except (ValueError, RecursionError):
        old = {}
    old = old if isinstance(old, dict) else {}
    attested = {"versions": old.get("versions") if isinstance(old.get("versions"), dict) else library_versions(),
                "provenance": old.get("provenance") if isinstance(old.get("provenance"), dict) else {}}
    announce(f"warning: {path}: re-attesting UNVERIFIED provenance under a new signature: "
             + json.dumps(attested, sort_keys=True, separators=(",", ":")))
    return attested


def _differs_from(manifest: dict, contents: dict[str, bytes]) -> list[str]:
    """The model files (what the provenance describes) whose bytes are not what the verified manifest
    signed; a re-rendered chart or report may change, a swapped model may not."""
    signed = {name: entry.get("sha256") for name, entry in manifest.get("files", {}).items()}
    return sorted(name for name in (SERVING_FILE, *PICKLES)
                  if signed.get(name) != (sha256(contents[name]) if name in contents else None))


def resign(path: Path, private_key, public_key=None, *, reattest_provenance: bool = False,
           announce: Callable[[str], None] = _stderr) -> dict:
    """A legitimate re-release: hash what the folder holds now and sign it, keeping the verified manifest's
    versions and provenance. ``reattest_provenance`` vouches for an unverified manifest's instead, loudly."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        raise ConfigError(f"{path}: not a folder")
    folder_fd = _open_folder(path)
    try:
        contents = _plain_files(folder_fd)
    finally:
        os.close(folder_fd)
    old = _attested(contents, public_key, reattest_provenance, announce, path)
    contents = {name: data for name, data in contents.items() if name not in (MANIFEST_FILE, SIGNATURE_FILE)}
    write_signed(path, contents, private_key, old["versions"], old["provenance"], require_release=False)
    return {name: sha256(data) for name, data in contents.items()}
