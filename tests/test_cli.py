"""The CLI turns every refusal into one line and exit status 2, and never half-overwrites artifacts."""

import subprocess
import sys

import pytest

from fraudpipe.cli import main


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUDPIPE_SIGNING_KEY", str(tmp_path / "keys" / "signing.pem"))
    monkeypatch.setenv("FRAUDPIPE_TRUSTED_KEY", str(tmp_path / "keys" / "trusted.pub"))
    monkeypatch.setenv("FRAUDPIPE_ARTIFACTS_DIR", str(tmp_path / "model"))
    return tmp_path


def test_train_writes_signed_artifacts_and_creates_the_key_pair(env, capsys):
    assert main(["train", "--rows", "3000"]) == 0
    out = capsys.readouterr().out
    assert "recall" in out and "wrote signed artifacts" in out
    assert (env / "keys" / "signing.pem").stat().st_mode & 0o777 == 0o600
    assert main(["verify"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["train", "--rows", "0"], "rows must be"),
    (["train", "--fraud-rate", "-0.5"], "fraud rate"),
    (["verify", "nowhere"], "not an artifact folder"),
])
def test_bad_input_is_one_line_and_exit_2(env, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_output_folder_that_is_a_file_is_refused(env, capsys):
    (env / "file").write_text("x")
    assert main(["train", "--out", str(env / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert (env / "file").read_text() == "x"


def test_empty_folder_and_missing_trusted_key_are_refused(env, capsys):
    (env / "empty").mkdir()
    assert main(["verify", str(env / "empty")]) == 2
    assert main(["train", "--rows", "2000"]) == 0
    (env / "keys" / "trusted.pub").unlink()
    assert main(["verify"]) == 2
    assert "cannot read trusted key" in capsys.readouterr().err


def test_failed_retrain_leaves_the_previous_artifacts_intact(env, capsys, monkeypatch):
    assert main(["train", "--rows", "2000"]) == 0
    before = {p.name: p.read_bytes() for p in (env / "model").iterdir()}
    import fraudpipe.artifacts as artifacts

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "_manifest", explode)
    with pytest.raises(OSError):
        main(["train", "--rows", "2000", "--seed", "7"])
    assert {p.name: p.read_bytes() for p in (env / "model").iterdir()} == before
    assert not [p for p in env.iterdir() if p.name.startswith(".model.")]


def test_every_command_has_help():
    for argv in (["--help"], ["train", "--help"], ["sign", "--help"], ["verify", "--help"],
                 ["serve", "--help"], ["keys", "new", "--help"], ["monitor", "--help"]):
        result = subprocess.run([sys.executable, "-m", "fraudpipe", *argv], capture_output=True, text=True)
        assert result.returncode == 0 and "usage:" in result.stdout


def test_every_option_is_described_and_every_command_names_the_variables_it_reads():
    from fraudpipe.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    subcommands = {**commands, "keys new": commands["keys"]._subparsers._group_actions[0].choices["new"]}
    for name, sub in subcommands.items():
        if name == "keys":
            continue
        undescribed = [a.dest for a in sub._actions if a.dest != "help" and not a.help]
        assert not undescribed, (name, undescribed)
        assert "FRAUDPIPE_" in (sub.epilog or ""), name
    assert "FRAUDPIPE_API_KEYS_FILE" in subcommands["keys new"].epilog
    assert "FRAUDPIPE_ARTIFACTS_DIR" in subcommands["serve"].epilog


def test_out_folder_with_files_the_program_did_not_write_is_refused_not_emptied(env, capsys):
    reports = env / "artifacts"
    reports.mkdir()
    (reports / "README.md").write_text("tracked notes")
    (reports / "report.html").write_text("<html>")
    assert main(["train", "--rows", "2000", "--out", str(reports)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a fraudpipe release" in err[0]
    assert sorted(p.name for p in env.iterdir()) == ["artifacts"]
    assert (reports / "README.md").read_text() == "tracked notes" and (reports / "report.html").exists()


def test_release_with_an_added_file_is_no_longer_a_release_and_is_refused(env, capsys):
    assert main(["train", "--rows", "2000"]) == 0
    (env / "model" / "notes.txt").write_text("mine")
    assert main(["train", "--rows", "2000"]) == 2
    assert (env / "model" / "notes.txt").read_text() == "mine"


def test_replacing_a_release_keeps_the_previous_one_beside_it(env, capsys):
    assert main(["train", "--rows", "2000"]) == 0
    before = {p.name: p.read_bytes() for p in (env / "model").iterdir()}
    capsys.readouterr()
    assert main(["train", "--rows", "2000", "--seed", "7"]) == 0
    kept = [p for p in env.iterdir() if p.name.startswith("model.previous-")]
    assert len(kept) == 1 and {p.name: p.read_bytes() for p in kept[0].iterdir()} == before
    assert f"kept the previous release in {kept[0]}" in capsys.readouterr().out
    assert main(["verify"]) == 0


def test_retrain_over_a_release_that_no_longer_verifies_is_refused_not_stripped_of_its_drift_check(env, capsys):
    import json

    assert main(["train", "--rows", "2000"]) == 0
    manifest_path = env / "model" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["provenance"]["profile"] = None  # a forged reference: "nothing to drift from"
    manifest_path.chmod(0o644)
    manifest_path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["train", "--rows", "2000", "--seed", "9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not verify" in err[0]
    assert not [p for p in env.iterdir() if p.name.startswith("model.previous-")]
