"""Verified loading refuses every tampering before any byte of a tampered pickle is unpickled."""

import io
import json
import os
import pickle
import re
import shutil
import signal

import joblib
import numpy as np
import pytest

from fraudpipe import signing
from fraudpipe.artifacts import (MANIFEST_FILE, MODEL_FILE, SCALER_FILE, SERVING_FILE, SIGNATURE_FILE,
                                 load_artifacts, resign, write_signed)
from fraudpipe.cli import main
from fraudpipe.errors import ArtifactError
from security_tests.attacks.artifact_integrity import trojan_pickle


@pytest.fixture
def folder(trained, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(trained.artifacts_dir, target)
    for entry in target.iterdir():
        os.chmod(entry, 0o644)
    return target


@pytest.fixture
def other_key(tmp_path):
    signing.ensure_keypair(tmp_path / "other.pem", tmp_path / "other.pub")
    return signing.load_private_key(tmp_path / "other.pem")


def _flip(folder, marker):
    data = bytearray((folder / SCALER_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / SCALER_FILE).write_bytes(bytes(data))


def _append(folder, marker):
    with open(folder / MODEL_FILE, "ab") as handle:
        handle.write(pickle.dumps(eval) + b"PAYLOAD")


def _swap(folder, marker):
    model, scaler = (folder / MODEL_FILE).read_bytes(), (folder / SCALER_FILE).read_bytes()
    (folder / MODEL_FILE).write_bytes(scaler)
    (folder / SCALER_FILE).write_bytes(model)


def _extra(folder, marker):
    (folder / "payload.pkl").write_bytes(trojan_pickle(b"", marker))


def _delete(folder, marker):
    (folder / SCALER_FILE).unlink()


def _edit_manifest(folder, marker):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["files"][MODEL_FILE]["sha256"] = "0" * 64
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def _trojan(folder, marker):
    (folder / MODEL_FILE).write_bytes(trojan_pickle((folder / MODEL_FILE).read_bytes(), marker))


TAMPERINGS = {"flipped byte": _flip, "appended payload": _append, "swapped files": _swap,
              "extra file": _extra, "deleted file": _delete, "edited manifest": _edit_manifest}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_is_refused_and_runs_no_code(name, folder, trained, tmp_path, capsys):
    marker = tmp_path / "marker"
    TAMPERINGS[name](folder, marker)
    with pytest.raises(ArtifactError):
        load_artifacts(folder, trained.trusted_key)
    assert main(["verify", str(folder)]) == 2
    assert not marker.exists()
    assert "error:" in capsys.readouterr().err


def test_fresh_artifacts_verify(trained, capsys, monkeypatch):
    monkeypatch.setenv("FRAUDPIPE_TRUSTED_KEY", str(trained.trusted_key))
    assert main(["verify", str(trained.artifacts_dir)]) == 0
    assert capsys.readouterr().out.startswith("OK ")


def test_trojan_resigned_with_another_key_is_refused(folder, trained, other_key, tmp_path):
    marker = tmp_path / "marker"
    _trojan(folder, marker)
    resign(folder, other_key, signing.load_public_key(trained.trusted_key), reattest_provenance=True,
           announce=lambda _: None)
    with pytest.raises(ArtifactError, match="signature does not verify"):
        load_artifacts(folder, trained.trusted_key)
    assert not marker.exists()


def test_trojan_signed_with_the_trusted_key_is_refused_by_the_allowlist(folder, trained, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "marker"
    _trojan(folder, marker)
    resign(folder, signing.load_private_key(trained.signing_key), signing.load_public_key(trained.trusted_key),
           reattest_provenance=True, announce=lambda _: None)
    with pytest.raises(ArtifactError, match="refused global builtins.eval"):
        load_artifacts(folder, trained.trusted_key)
    monkeypatch.setenv("FRAUDPIPE_TRUSTED_KEY", str(trained.trusted_key))
    assert main(["verify", str(folder)]) == 2
    assert "fraud_model.pkl: refused global builtins.eval" in capsys.readouterr().err
    assert not marker.exists()


def test_artifacts_built_with_other_library_versions_are_refused(folder, trained):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["versions"]["scikit-learn"] = "0.0.1"
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    resign(folder, signing.load_private_key(trained.signing_key), reattest_provenance=True)
    with pytest.raises(ArtifactError, match="scikit-learn 0.0.1"):
        load_artifacts(folder, trained.trusted_key)


def test_truncated_artifact_resigned_is_refused_as_unreadable_not_crashed(folder, trained):
    data = (folder / MODEL_FILE).read_bytes()
    (folder / MODEL_FILE).write_bytes(data[: len(data) // 3])
    resign(folder, signing.load_private_key(trained.signing_key), signing.load_public_key(trained.trusted_key),
           reattest_provenance=True, announce=lambda _: None)
    with pytest.raises(ArtifactError, match="cannot be deserialised"):
        load_artifacts(folder, trained.trusted_key)


def test_artifacts_are_read_only_and_the_private_key_lives_elsewhere(trained):
    for entry in trained.artifacts_dir.iterdir():
        assert entry.stat().st_mode & 0o222 == 0, entry
    assert trained.signing_key.parent != trained.artifacts_dir
    assert trained.signing_key.stat().st_mode & 0o777 == 0o600


# --- a release signed with the trusted key must still be exactly a sound release -------------------

def _signed_release(folder, trained, **replaced):
    """Re-sign ``folder`` with the trusted key, some files replaced: what an insider or a bug could ship."""
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    contents = {name: (folder / name).read_bytes() for name in manifest["files"]}
    contents.update(replaced)
    write_signed(folder, contents, signing.load_private_key(trained.signing_key), manifest["versions"],
                 manifest["provenance"])
    for entry in folder.iterdir():
        os.chmod(entry, 0o644)


def _forest_bytes(folder, change):
    with np.load(folder / SERVING_FILE) as stored:
        arrays = {name: stored[name].copy() for name in stored.files}
    internal = np.flatnonzero(np.isfinite(arrays["threshold"]))
    change(arrays, internal)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


FOREST_DAMAGE = {
    "child out of range": lambda a, i: a["left"].__setitem__(i[0], 10 ** 6),
    "negative child": lambda a, i: a["right"].__setitem__(i[0], -5),
    "NaN threshold": lambda a, i: a["threshold"].__setitem__(i, np.nan),
    "absurd depth": lambda a, i: a.__setitem__("depth", np.asarray(10 ** 7, np.intp)),
    "cycle to the root": lambda a, i: a["left"].__setitem__(i[1], a["roots"][0]),
    "feature out of range": lambda a, i: a["feature"].__setitem__(i[0], 99),
    "probability above one": lambda a, i: a["leaf_proba"].__setitem__(0, 1.5),
    "float child indices": lambda a, i: a.__setitem__("left", a["left"].astype(np.float64)),
    "leaf marker lost": lambda a, i: a["threshold"].__setitem__(np.flatnonzero(~np.isfinite(a["threshold"]))[0], 0.0),
    "missing array": lambda a, i: a.pop("roots"),
}


@pytest.mark.parametrize("damage", sorted(FOREST_DAMAGE))
def test_signed_but_unsound_serving_forest_is_refused(damage, folder, trained):
    _signed_release(folder, trained, **{SERVING_FILE: _forest_bytes(folder, FOREST_DAMAGE[damage])})
    with pytest.raises(ArtifactError, match=SERVING_FILE):
        load_artifacts(folder, trained.trusted_key, pickles=False)


def test_serving_forest_must_equal_the_one_compiled_from_the_signed_pickles(folder, trained):
    def nudge(arrays, internal):
        leaves = np.flatnonzero(~np.isfinite(arrays["threshold"]))
        arrays["leaf_proba"][leaves[:50]] = 1.0 - arrays["leaf_proba"][leaves[:50]]
    _signed_release(folder, trained, **{SERVING_FILE: _forest_bytes(folder, nudge)})
    load_artifacts(folder, trained.trusted_key, pickles=False)  # sound on its own ...
    with pytest.raises(ArtifactError, match="differs from the forest compiled"):
        load_artifacts(folder, trained.trusted_key)  # ... but not what the pickles say


def _dumped(obj):
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("name, payload, reason", [
    (MODEL_FILE, lambda f: _dumped({"estimators_": []}), "not a fitted RandomForestClassifier"),
    (SCALER_FILE, lambda f: _dumped([1.0, 2.0]), "not a fitted StandardScaler"),
    (MODEL_FILE, lambda f: (f / MODEL_FILE).read_bytes() + b"\x80\x04K\x01.", "follow the end of the pickle"),
])
def test_signed_pickle_of_the_wrong_kind_or_with_trailing_bytes_fails_verify(name, payload, reason, folder,
                                                                            trained, capsys):
    _signed_release(folder, trained, **{name: payload(folder)})
    with pytest.raises(ArtifactError, match=reason):
        load_artifacts(folder, trained.trusted_key)


def test_fifo_in_place_of_a_signed_file_is_refused_without_hanging(folder, trained):
    (folder / SCALER_FILE).unlink()
    os.mkfifo(folder / SCALER_FILE)

    def hung(signum, frame):
        raise TimeoutError("the loader blocked on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        with pytest.raises(ArtifactError, match="not a regular file"):
            load_artifacts(folder, trained.trusted_key)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_symlink_to_the_genuine_bytes_is_still_refused(folder, trained, tmp_path):
    shutil.move(folder / MODEL_FILE, tmp_path / "elsewhere.pkl")
    (folder / MODEL_FILE).symlink_to(tmp_path / "elsewhere.pkl")
    with pytest.raises(ArtifactError, match="symbolic link"):
        load_artifacts(folder, trained.trusted_key)


@pytest.mark.parametrize("manifest", [b"not json {", b"\xff\xfe", b"[]", b'{"format": 1, "files": []}',
                                      b"[" * 100_000,
                                      b'{"format": 1, "files": {"forest.npz": {"sha256": "x", "size": 1}}}'])
def test_signed_manifest_that_is_not_a_manifest_is_one_line_refusal(manifest, folder, trained, capsys,
                                                                     monkeypatch):
    key = signing.load_private_key(trained.signing_key)
    (folder / MANIFEST_FILE).write_bytes(manifest)
    (folder / SIGNATURE_FILE).write_bytes(key.sign(manifest))
    with pytest.raises(ArtifactError, match=MANIFEST_FILE):
        load_artifacts(folder, trained.trusted_key, pickles=False)
    monkeypatch.setenv("FRAUDPIPE_TRUSTED_KEY", str(trained.trusted_key))
    assert main(["verify", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: manifest.json")


# --- sign: plain files only, and provenance only from a verified manifest ---------------------------

@pytest.fixture
def sign_env(trained, monkeypatch):
    monkeypatch.setenv("FRAUDPIPE_SIGNING_KEY", str(trained.signing_key))
    monkeypatch.setenv("FRAUDPIPE_TRUSTED_KEY", str(trained.trusted_key))


@pytest.mark.parametrize("plant", ["link to the private key", "fifo", "folder"])
def test_sign_refuses_links_and_non_regular_files(plant, folder, trained, sign_env, capsys):
    before = (folder / MANIFEST_FILE).read_bytes()
    if plant == "fifo":
        os.mkfifo(folder / "planted")
    elif plant == "folder":
        (folder / "planted").mkdir()
        (folder / "planted" / "notes.txt").write_text("mine")
    else:
        (folder / "planted").symlink_to(trained.signing_key)
    assert main(["sign", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(r"planted: (is a symbolic link|not a regular file)", err[0])
    assert (folder / MANIFEST_FILE).read_bytes() == before and os.path.lexists(folder / "planted")


def _forge_drift_reference(folder):
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["provenance"]["profile"] = {"forged": True}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_sign_refuses_to_launder_an_edited_unsigned_manifest(folder, trained, sign_env, capsys):
    _forge_drift_reference(folder)
    assert main(["sign", str(folder)]) == 2
    assert "--reattest-provenance" in capsys.readouterr().err
    with pytest.raises(ArtifactError, match="signature does not verify"):
        load_artifacts(folder, trained.trusted_key, pickles=False)


def test_reattest_provenance_signs_and_says_what_it_vouches_for(folder, trained, sign_env, capsys):
    _forge_drift_reference(folder)
    assert main(["sign", "--reattest-provenance", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "UNVERIFIED provenance" in err and '"forged":true' in err
    loaded = load_artifacts(folder, trained.trusted_key, pickles=False)
    assert loaded.manifest["provenance"]["profile"] == {"forged": True}


def test_sign_of_a_verified_release_keeps_its_provenance(folder, trained, sign_env):
    provenance = json.loads((folder / MANIFEST_FILE).read_text())["provenance"]
    (folder / "roc_curve.png").write_bytes(b"\x89PNG re-rendered")
    assert main(["sign", str(folder)]) == 0
    loaded = load_artifacts(folder, trained.trusted_key)
    assert loaded.manifest["provenance"] == provenance and [p for p in folder.parent.iterdir()
                                                            if p.name.startswith("model.previous-")]
