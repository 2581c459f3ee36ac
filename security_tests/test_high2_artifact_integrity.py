"""HIGH-2 — no integrity check when the artifacts are loaded: a release tampered with at rest (a payload
that runs or moves the boundary at load, any same-size change to any file, every way around the signature)
must be refused before anything in it is unpickled, and a file grown past its signed size before it is read
in full. Needs write access to the artifact folder, so it runs in-process only (inherited, hardened, hardened
without ``verify_artifacts``)."""

import contextlib
import io

import pytest

from fraudpipe import signing
from fraudpipe.artifacts import load_artifacts
from fraudpipe.errors import FraudpipeError
from security_tests.attacks.artifact_integrity import (GROWN_BY, INSIDER_FORESTS, INSIDER_RELEASES, LOAD_TIME_PAYLOADS,
                                                       PLANTED_KEY_NAMES, SAME_SIZE, SIGN_TRAPS, sign_trapped_folder,
                                                       tamper_and_serve, verify_refuses_tampered_copies)
from security_tests.contract import expect_attack, grey_box_part
from security_tests.markers import runs
from security_tests.misconfiguration import as_deployed, deploy

BY_HAND = ("tampering needs write access to the artifact folder: check that the service refuses, before unpickling "
           "anything, a release whose files or signature differ from what was signed")


def _tamper(mode, trained, target, tmp_path):
    """The session's release, tampered in a copy; the service of this variant started on the copy."""
    return tamper_and_serve(trained.artifacts_dir, tmp_path, mode,
                            lambda folder: target(artifacts_dir=folder).client(), target().profile)


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", list(LOAD_TIME_PAYLOADS))
@runs(tamper_and_serve)
def test_tampered_model_is_refused_before_unpickling(variant, mode, trained, target, tmp_path, evidence):
    found = evidence.record(_tamper(mode, trained, target, tmp_path))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert not found.details["marker_written"] and found.measurements["predict_status"] == 503
        if mode.startswith("grown") and found.measurements["bytes_read_starting"] is not None:
            assert found.measurements["bytes_read_starting"] < GROWN_BY // 4, "refused only after reading it in full"
    elif mode.startswith("trojan"):
        assert found.details["marker_written"] and found.details["service_ready"], "the trojan ran and the model serves"
    elif mode == "scaler":
        assert found.details["positive_example_answered_positive"] is False, "the doctored scaler moved the boundary"


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", list(SAME_SIZE))
@runs(tamper_and_serve)
def test_any_change_to_the_signed_release_is_refused(variant, mode, trained, target, tmp_path, evidence):
    found = evidence.record(_tamper(mode, trained, target, tmp_path))
    assert found.details["resized_files"] == [], "the tampering must keep every file's size"
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert not found.details["marker_written"] and found.measurements["predict_status"] == 503


def _operator_verify(variant, trusted_key):
    """Where ``verify_artifacts`` is deployed the operator runs ``python -m fraudpipe verify`` on a release
    (every load-time check, the pickles through the allowlist unpickler); elsewhere nothing checks it."""
    if not variant.control_on("verify_artifacts"):
        return None

    def verify(folder):
        try:
            load_artifacts(folder, trusted_key)
        except FraudpipeError as exc:
            return str(exc)
        return None
    return verify


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", list(INSIDER_RELEASES))
@runs(tamper_and_serve)
def test_an_insider_release_signed_with_the_real_key_runs_no_code_and_serves_no_unsound_forest(
        variant, mode, trained, target, tmp_path, evidence):
    """The signature verifies (an insider, or a stolen key), so the allowlist unpickler and the forest's
    structure check are all that stand: a trojan's marker must not appear and an unsound forest must not serve."""
    found = evidence.record(tamper_and_serve(
        trained.artifacts_dir, tmp_path, mode, lambda folder: target(artifacts_dir=folder).client(), target().profile,
        signing_key=signing.load_private_key(trained.signing_key),
        verify=_operator_verify(variant, trained.trusted_key)))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert not found.details["marker_written"] and found.details["verify_refusal"]
        if mode in INSIDER_FORESTS:
            assert found.measurements["health_status"] == 503


def _sign_cli(trained, monkeypatch):
    """``python -m fraudpipe sign DIR`` as an operator runs it: the exit status and what it printed."""
    from fraudpipe.cli import main

    def sign(folder):
        monkeypatch.setenv("FRAUDPIPE_SIGNING_KEY", str(trained.signing_key))
        monkeypatch.setenv("FRAUDPIPE_TRUSTED_KEY", str(trained.trusted_key))
        monkeypatch.setenv("FRAUDPIPE_ARTIFACTS_DIR", str(folder))
        monkeypatch.setenv("FRAUDPIPE_AUDIT_LOG", "")
        said = io.StringIO()
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            status = main(["sign", str(folder)])
        return status, said.getvalue()
    return sign


@pytest.mark.white_box("sign runs where the private key is: check that it refuses links and unverified manifests")
@pytest.mark.finding("HIGH-2")
@pytest.mark.parametrize("mode", list(SIGN_TRAPS))
@runs(sign_trapped_folder)
def test_sign_refuses_a_planted_link_and_an_unverified_manifest(mode, trained, tmp_path, monkeypatch, evidence):
    """The signer is the insider's tool: it must not follow a link into a signed release (the private key
    shipped) nor re-sign a manifest that no longer verifies (laundered provenance). Profile-independent: the
    acquired service had no signer, so this runs once."""
    found = evidence.record(sign_trapped_folder(trained.artifacts_dir, tmp_path, mode, trained.signing_key,
                                                _sign_cli(trained, monkeypatch)))
    assert not found.attack_succeeded, found.summary
    assert found.measurements["exit_status"] == 2 and found.details["stderr"].startswith("error: ")


@pytest.mark.white_box(BY_HAND)
@pytest.mark.finding("HIGH-2")
@runs(tamper_and_serve)
def test_a_trusted_key_inside_the_artifact_folder_is_refused_at_start(variant, trained, target, tmp_path, evidence):
    """``FRAUDPIPE_TRUSTED_KEY`` pointing into the artifact folder lets whoever writes the release choose the
    key that verifies it: the attacker plants their key there and re-signs. The service must refuse to start;
    with the key moved outside (as the error says) the attacker's release is refused."""
    refusals = []

    def serve(folder):
        reach, refusal = deploy(target, {"artifacts_dir": folder, "trusted_key": folder / PLANTED_KEY_NAMES[0]},
                                {"artifacts_dir": folder})
        refusals.append(refusal)
        return reach.client()

    found = tamper_and_serve(trained.artifacts_dir, tmp_path, "public key planted, release re-signed with it", serve,
                             target().profile)
    found.summary = f"{as_deployed('a trusted key inside the artifact folder', refusals[0])}: {found.summary}"
    found.details["refused_at_start"] = refusals[0]
    evidence.record(found)
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert refusals[0] and found.measurements["health_status"] == 503


@pytest.mark.finding("HIGH-2")
@runs(verify_refuses_tampered_copies)
def test_the_targets_verify_refuses_every_tampered_copy_of_its_model_folder(grey_box, evidence):
    """Grey-box: the profile's ``[artifacts]`` names the model folder and the command that decides whether the target
    would serve a folder; tampering works on copies in a temporary folder."""
    artifacts = grey_box_part(grey_box().profile.artifacts, "artifacts", "HIGH-2")
    found = evidence.record(verify_refuses_tampered_copies(artifacts))
    assert not found.attack_succeeded, found.summary
