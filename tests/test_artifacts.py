"""Verified loading refuses every tampering before any byte of a tampered pickle is unpickled."""

import json
import os
import pickle
import shutil

import pytest

from fraudpipe import signing
from fraudpipe.artifacts import MANIFEST_FILE, MODEL_FILE, SCALER_FILE, load_artifacts, resign
from fraudpipe.cli import main
from fraudpipe.errors import ArtifactError
from security_tests.attacks.tampering import trojan_pickle


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
    resign(folder, other_key)
    with pytest.raises(ArtifactError, match="signature does not verify"):
        load_artifacts(folder, trained.trusted_key)
    assert not marker.exists()


def test_trojan_signed_with_the_trusted_key_is_refused_by_the_allowlist(folder, trained, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "marker"
    _trojan(folder, marker)
    resign(folder, signing.load_private_key(trained.signing_key))
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
    resign(folder, signing.load_private_key(trained.signing_key))
    with pytest.raises(ArtifactError, match="scikit-learn 0.0.1"):
        load_artifacts(folder, trained.trusted_key)


def test_truncated_artifact_resigned_is_refused_as_unreadable_not_crashed(folder, trained):
    data = (folder / MODEL_FILE).read_bytes()
    (folder / MODEL_FILE).write_bytes(data[: len(data) // 3])
    resign(folder, signing.load_private_key(trained.signing_key))
    with pytest.raises(ArtifactError, match="cannot be deserialised"):
        load_artifacts(folder, trained.trusted_key)


def test_artifacts_are_read_only_and_the_private_key_lives_elsewhere(trained):
    for entry in trained.artifacts_dir.iterdir():
        assert entry.stat().st_mode & 0o222 == 0, entry
    assert trained.signing_key.parent != trained.artifacts_dir
    assert trained.signing_key.stat().st_mode & 0o777 == 0o600
