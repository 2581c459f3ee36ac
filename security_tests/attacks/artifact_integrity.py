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
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fraudpipe import signing
from fraudpipe.artifacts import (MANIFEST_FILE, METRICS_FILE, MODEL_FILE, SCALER_FILE, SERVING_FILE,
                                 SIGNATURE_FILE, sha256)
from fraudpipe.compiled import CompiledForest
from security_tests.attacks.client import Client, exchange
from security_tests.budget import Need, spends
from security_tests.contract import Evidence, NotAssessed
from security_tests.targets.profile import Artifacts, TargetProfile
from security_tests.subprocesses import run_bounded

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


def _signed_by(key: Ed25519PrivateKey, **manifest_fields) -> Callable[[Path], None]:
    """A manifest of the tampered files signed with ``key``: the attacker's own, or (an insider) the real one."""
    def finish(folder: Path) -> None:
        _rehash_manifest(folder, signer_key_id=signing.key_id(key.public_key()), **manifest_fields)
        (folder / SIGNATURE_FILE).write_bytes(key.sign((folder / MANIFEST_FILE).read_bytes()))
    return finish


PLANTED_KEY_NAMES = ("trusted-key.pub", "trusted-key.pem", "public-key.pem", "public-key.pub", "public.pem",
                     "pubkey.pem", "key.pub", "key.pem", "signing-key.pub", "signing-key.pem.pub", "manifest.pub",
                     "manifest.pem", "manifest.sig.pub", "release.pub", "cosign.pub", "ed25519.pub", "verify-key.pem",
                     "trusted.pem", "trusted.pub")
"""Every name a loader could plausibly read a key from in the folder it verifies (the configured key's
default name first); the same key also rides in the manifest under the fields a loader might consult."""
MANIFEST_KEY_FIELDS = ("public_key", "trusted_key", "signer_public_key")


def _planted_key(folder: Path) -> None:
    key = _attacker_key()
    pem = _public_pem(key)
    for name in PLANTED_KEY_NAMES:
        (folder / name).write_bytes(pem)
    _signed_by(key, **{field: pem.decode() for field in MANIFEST_KEY_FIELDS})(folder)


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


GROWN_BY = 64 * 1024 * 1024
"""How far past its signed size a file is grown (sparse: no disk is used): a loader that reads a file before
checking its size reads all of it."""

LOAD_TIME_PAYLOADS: dict[str, Tampering] = {
    "append": lambda folder, marker: (folder / MODEL_FILE).write_bytes(
        (folder / MODEL_FILE).read_bytes() + b"TAMPERED_PAYLOAD"),
    "grown 64 MiB past its signed size": lambda folder, marker: os.truncate(
        folder / MODEL_FILE, (folder / MODEL_FILE).stat().st_size + GROWN_BY),
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



def _forest_arrays(data: bytes, change: Callable[[dict[str, np.ndarray]], None]) -> bytes:
    """The serving arrays rewritten with ``change`` and saved without any check, as an insider could."""
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        arrays = {name: stored[name].copy() for name in stored.files}
    change(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


ABSURD_DEPTH = 10**9
"""A declared depth ``predict`` would walk on every call: a release that answers nothing for hours."""


def _absurd_depth(arrays: dict[str, np.ndarray]) -> None:
    arrays["depth"] = np.asarray(ABSURD_DEPTH, np.intp)


def _cycle(arrays: dict[str, np.ndarray]) -> None:
    """The first split below a tree's root now points back at that root: a path that goes left there loops."""
    roots, ids = arrays["roots"], np.arange(len(arrays["left"]))
    split = int(np.flatnonzero((arrays["left"] != ids) & ~np.isin(ids, roots))[0])
    arrays["left"][split] = roots[roots <= split].max()


INSIDER_PICKLES: dict[str, Tampering] = {
    "trojan fraud_model.pkl": _trojan(MODEL_FILE),
    "trojan scaler.pkl": _trojan(SCALER_FILE),
}
"""Insider releases whose payload runs when a pickle is loaded (by the service or by ``verify``)."""

INSIDER_FORESTS: dict[str, Tampering] = {
    f"forest declaring depth {ABSURD_DEPTH:,}": _in_place(SERVING_FILE, lambda d: _forest_arrays(d, _absurd_depth)),
    "forest with a cycle": _in_place(SERVING_FILE, lambda d: _forest_arrays(d, _cycle)),
}
"""Insider releases whose serving forest is unsound: served, they hang or loop every request."""

INSIDER_RELEASES: dict[str, Tampering] = {**INSIDER_PICKLES, **INSIDER_FORESTS}
"""Signed with the real key (an insider, or a stolen key): the signature verifies, only the next layer
(the allowlist unpickler, the forest's structure check) stands."""

TAMPERINGS: dict[str, Tampering] = {**LOAD_TIME_PAYLOADS, **SAME_SIZE, **INSIDER_RELEASES}


def writable_copy(source: Path, target: Path) -> Path:
    """A copy of a (read-only) release the attacker can write to."""
    shutil.copytree(source, target)
    for entry in target.iterdir():
        os.chmod(entry, 0o644)
    return target


def bytes_read() -> int | None:
    """Bytes this process has read from files and sockets so far (Linux), so an in-process start shows how
    much of a release it read before refusing it; None where the kernel does not say."""
    try:
        return int(re.search(r"^rchar: (\d+)$", Path("/proc/self/io").read_text(), re.M).group(1))
    except (OSError, AttributeError):
        return None


def tamper_and_serve(source: Path, workdir: Path, mode: str, serve: Callable[[Path], Client],
                     profile: TargetProfile, *, signing_key: Ed25519PrivateKey | None = None,
                     verify: Callable[[Path], str | None] | None = None) -> Evidence:
    """Apply one tampering to a copy of the release in ``source`` and start the target on it with ``serve``.

    The attack succeeds if the tampered folder is served (health answers 200) or the attacker's code ran.
    An insider (``signing_key``: the real key) re-signs the tampered folder; the operator then runs
    ``verify`` (the refusal, or None when it accepts) where that check is deployed, and for a pickle payload
    the attack succeeds if its code ran or ``verify`` passed it (the serving path never unpickles).
    """
    slug = re.sub(r"[^a-z0-9]+", "-", mode.lower())
    folder = writable_copy(source, workdir / f"tampered-{slug}")
    marker = workdir / f"marker-{slug}"
    before = {p.name: p.stat().st_size for p in folder.iterdir()}
    TAMPERINGS[mode](folder, marker)
    if signing_key is not None:
        _signed_by(signing_key)(folder)
    after = {p.name: p.stat().st_size for p in folder.iterdir()}
    resized = sorted(n for n in before if n in after and before[n] != after[n] and n not in (MANIFEST_FILE,
                                                                                              SIGNATURE_FILE))
    refusal = verify(folder) if verify is not None else None
    verified = verify is not None and refusal is None
    reads_before = bytes_read()
    client = serve(folder)
    health = client.get(profile.health_path or "/health")
    reads = None if reads_before is None else bytes_read() - reads_before
    ready, code_ran = health.status == 200, marker.exists()
    # a served forest that loops or walks a billion levels would hang the request: being served is the result
    prediction = None if mode in INSIDER_FORESTS and ready else client.predict(profile.positive_example)
    succeeded = code_ran or verified if mode in INSIDER_PICKLES else ready or code_ran or verified
    answered = (f", the positive example answered {'positive' if prediction.positive else 'NEGATIVE'}"
                if prediction is not None and prediction.ok else "")
    predicted = "not sent" if prediction is None else prediction.status
    checked = ("" if verify is None else
               f"; verify {'ACCEPTED it' if verified else 'refused it: ' + refusal}")
    return Evidence(
        succeeded, queries=2,
        summary=(f"{mode}{' (re-signed with the real key)' if signing_key is not None else ''}: the tampered folder "
                 f"was {'SERVED' if ready else 'refused'} (health {health.status}, predict {predicted}"
                 f"{answered}){checked}; attacker code {'RAN' if code_ran else 'did not run'}"
                 + (f"; {reads / 1_048_576:.2f} MiB read starting" if reads is not None else "")),
        samples=[exchange("The positive example sent to the tampered service", profile.positive_example, prediction)]
        if prediction is not None else [],
        measurements={"health_status": health.status, "predict_status": None if prediction is None else predicted,
                      "bytes_read_starting": reads},
        details={"tampering": mode, "resized_files": resized, "files_added": sorted(set(after) - set(before)),
                 "service_ready": ready, "marker_written": code_ran, "health": health.body,
                 "insider_signed": signing_key is not None, "verify_ran": verify is not None,
                 "verify_refusal": refusal,
                 "positive_example_answered_positive": None if prediction is None else prediction.positive})



def _link_to_key(folder: Path, private_key: Path) -> None:
    """A link planted in the folder before a re-release: a signer that follows it ships the private key."""
    (folder / "release-notes.txt").symlink_to(private_key)


def _edited_provenance(folder: Path, private_key: Path) -> None:
    """The manifest's provenance rewritten, not re-signed: a re-release must not launder it into a signed one."""
    manifest = json.loads((folder / MANIFEST_FILE).read_bytes())
    manifest["provenance"]["dataset_sha256"] = "0" * 64
    (folder / MANIFEST_FILE).write_bytes((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


SIGN_TRAPS: dict[str, Callable[[Path, Path], None]] = {
    "a link to the private key planted in the folder": _link_to_key,
    "the manifest's provenance edited without re-signing": _edited_provenance,
}


def sign_trapped_folder(source: Path, workdir: Path, mode: str, private_key: Path,
                        sign: Callable[[Path], tuple[int, str]]) -> Evidence:
    """Set a trap in a copy of the release and run ``sign`` on it (the CLI: exit status and its stderr).

    The attack succeeds if ``sign`` signs: a release now carrying the private key (the planted link
    followed), or vouching for provenance nobody signed.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", mode.lower())
    folder = writable_copy(source, workdir / f"trapped-{slug}")
    SIGN_TRAPS[mode](folder, private_key)
    status, said = sign(folder)
    secret = private_key.read_bytes()
    regular = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink()]
    leaked = sorted(p.name for p in regular if secret.strip() in p.read_bytes())
    manifest = json.loads((folder / MANIFEST_FILE).read_bytes())
    laundered = status == 0 and manifest.get("provenance", {}).get("dataset_sha256") == "0" * 64
    signed = status == 0
    return Evidence(
        signed and (bool(leaked) or laundered), queries=0,
        summary=(f"sign on a folder with {mode}: " + ("SIGNED it" + (f", the release now holds the private key in "
                                                                        f"{', '.join(leaked)}" if leaked else "")
                                                      + (", vouching for the edited provenance" if laundered else ""))
                 if signed else f"refused (exit {status}): {said.strip()}"),
        measurements={"exit_status": status},
        details={"trap": mode, "files_with_the_private_key": leaked, "laundered_provenance": laundered,
                 "stderr": said.strip()})


class _MarkerOnly:
    """Pickled as a call that writes ``marker``: nothing here is ever unpickled by the assessment."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"__import__('pathlib').Path({str(self.marker)!r}).write_text('code ran at unpickling')",))


PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".sav")
MAX_FOLDER_BYTES = 512 << 20
"""A model folder larger than this is not copied a dozen times: the finding is not assessed (budget)."""
VERIFY_SECONDS = 120


def _looks_pickled(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(2)
    return path.suffix.lower() in PICKLE_SUFFIXES or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def folder_tamperings(folder: Path, outside: Path, marker: Path) -> dict[str, Callable[[Path], None]]:
    """Each way a copy of ``folder`` is tampered, by name: bytes appended to each file, one byte of each file
    changed, each file removed, a file added, each pickle replaced by one whose load writes ``marker``, and a
    file replaced by a symlink to an identical copy outside the folder (``outside``)."""
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.is_symlink())

    def append(name):
        return lambda copy: (copy / name).write_bytes((copy / name).read_bytes() + b"\nTAMPERED")

    def flip(name):
        def change(copy):
            data = bytearray((copy / name).read_bytes() or b"\0")
            data[len(data) // 2] ^= 0x01
            (copy / name).write_bytes(bytes(data))
        return change

    def trojan(name):
        return lambda copy: (copy / name).write_bytes(pickle.dumps(_MarkerOnly(marker), protocol=2))

    def linked(name):
        def change(copy):
            outside.mkdir(exist_ok=True)
            shutil.copyfile(copy / name, outside / name)
            (copy / name).unlink()
            (copy / name).symlink_to(outside / name)
        return change

    tamperings: dict[str, Callable[[Path], None]] = {}
    for name in files:
        tamperings[f"bytes appended to {name}"] = append(name)
        tamperings[f"one byte of {name} changed"] = flip(name)
        tamperings[f"{name} removed"] = lambda copy, name=name: (copy / name).unlink()
    tamperings["a file added (extra.bin)"] = lambda copy: (copy / "extra.bin").write_bytes(b"\0" * 16)
    for name in (n for n in files if _looks_pickled(folder / n)):
        tamperings[f"{name} replaced by a pickle whose load writes a marker"] = trojan(name)
    non_pickle = next((n for n in files if not _looks_pickled(folder / n)), files[0] if files else None)
    if non_pickle is not None:
        tamperings[f"{non_pickle} replaced by a symlink to an identical file outside"] = linked(non_pickle)
    return tamperings


def entries(folder: Path) -> list[Path]:
    """Every entry below ``folder``, links included but never followed (``os.walk`` does not enter them)."""
    found = []
    for where, folders, files in os.walk(folder, followlinks=False):
        found += [Path(where, name) for name in (*folders, *files)]
    return sorted(found)


def _copy(folder: Path, copy: Path) -> Path:
    """A copy the assessment may write (links copied as links, never followed or written through)."""
    shutil.copytree(folder, copy, symlinks=True)
    for entry in entries(copy):
        if not entry.is_symlink():
            entry.chmod(entry.lstat().st_mode | 0o200 | (0o100 if entry.is_dir() else 0))
    copy.chmod(0o700)
    return copy


def _verify(command: list[str]) -> tuple[int, str]:
    try:
        done = run_bounded(command, VERIFY_SECONDS, cap=64 << 10)
    except subprocess.TimeoutExpired:
        return -1, f"no answer in {VERIFY_SECONDS} s"
    except OSError as exc:
        raise NotAssessed(f"not assessed: artifacts.verify cannot be run ({exc.strerror})") from None
    said = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
    return done.returncode, (said[-1][:200] if said else "")


def _folder_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in entries(folder))


@spends(lambda profile: Need(why="runs the target's verify command on tampered copies; sends nothing"))
def verify_refuses_tampered_copies(artifacts: Artifacts) -> Evidence:
    """The target's own ``verify`` asked about copies of its model folder, each tampered one way, and about an
    untouched copy: it must refuse every tampered one (non-zero exit) and accept the untouched one. A marker
    written while it ran shows it executes what it loads. Everything happens in a temporary folder, removed
    after; the model folder is only read, and nothing from it is unpickled here."""
    folder = artifacts.folder
    if _folder_bytes(folder) > MAX_FOLDER_BYTES:
        raise NotAssessed(f"not assessed (budget): {folder} is over {MAX_FOLDER_BYTES >> 20} MiB")
    with tempfile.TemporaryDirectory(prefix="fraudpipe-tamper-") as work:
        work_path = Path(work)
        status, said = _verify(artifacts.command(_copy(folder, work_path / "untouched")))
        if status != 0:
            raise NotAssessed(f"not assessed: verify refused the untouched copy too (exit {status}: {said}), so a "
                              "refusal of a tampered one would mean nothing")
        accepted, refused, markers = [], {}, []
        for index, (name, tamper) in enumerate(folder_tamperings(folder, work_path / "outside",
                                                                 work_path / "marker").items()):
            copy = _copy(folder, work_path / f"copy-{index}")
            tamper(copy)
            status, said = _verify(artifacts.command(copy))
            if (work_path / "marker").exists():
                markers.append(name)
                (work_path / "marker").unlink()
            if status == 0:
                accepted.append(name)
            else:
                refused[name] = f"exit {status}: {said}"
    tried = len(accepted) + len(refused)
    ran = f"; verify RAN the code in {', '.join(markers)}" if markers else ""
    return Evidence(
        attack_succeeded=bool(accepted or markers), queries=0,
        summary=(f"the target's verify accepted {len(accepted)} of {tried} tampered copies of {folder}"
                 + (f" ({', '.join(accepted[:4])})" if accepted else "") + f" and the untouched one{ran}"),
        measurements={"tampered_copies": tried, "accepted": len(accepted), "marker_written": len(markers)},
        details={"accepted": accepted, "refused": refused, "code_ran_in": markers,
                 "verify": list(artifacts.verify)})
