"""The grey-box attacks read the target's own files and never change them: tampering happens on copies in a
temporary folder that is removed after, links are never followed or written through, and a verifier that
unpickles what it checks is caught by the marker its load writes. In-process, on folders made here."""

from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path

import pytest

from security_tests.attacks.artifact_hygiene import folder_hygiene
from security_tests.attacks.artifact_integrity import entries, verify_refuses_tampered_copies
from security_tests.targets.profile import Artifacts

LOADS_THE_PICKLE = "import pickle, sys; pickle.load(open(sys.argv[1] + '/model.pkl', 'rb'))"


def _state(folder: Path) -> dict:
    """Every entry's mode and content (a link's target), the folder's own mode included."""
    def content(p: Path):
        return str(p.readlink()) if p.is_symlink() else p.read_bytes() if p.is_file() else None

    return {".": folder.stat().st_mode} | {str(p.relative_to(folder)): (p.lstat().st_mode, content(p))
                                           for p in entries(folder)}


@pytest.fixture
def release(tmp_path) -> tuple[Path, Path]:
    """A model folder (read-only files, a link to a folder outside holding a key) and that outside folder."""
    outside, folder = tmp_path / "outside", tmp_path / "model"
    outside.mkdir()
    (outside / "id_rsa").write_text("-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n")
    (outside / "id_rsa").chmod(0o444)
    outside.chmod(0o555)  # a copy that chmods through the link would make these writable
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps({"coef": [1.0, 2.0]}))
    (folder / "meta.json").write_text('{"version": 1}')
    (folder / "shared").symlink_to(outside)
    for path in (folder / "model.pkl", folder / "meta.json"):
        path.chmod(0o444)
    return folder, outside


def test_the_hygiene_scan_reports_a_link_and_never_reads_through_it(release):
    folder, _ = release
    found = folder_hygiene(folder)
    assert not found.attack_succeeded, found.summary
    assert found.details["links_not_followed"] == ["shared"] and found.measurements["files_scanned"] == 2


def test_tampering_works_on_copies_and_a_verifier_that_unpickles_is_caught(release, tmp_path, monkeypatch):
    folder, outside = release
    before, outside_before = _state(folder), _state(outside)
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    found = verify_refuses_tampered_copies(Artifacts(folder, (sys.executable, "-c", LOADS_THE_PICKLE, "{folder}")))
    assert found.attack_succeeded and found.details["code_ran_in"] == [
        "model.pkl replaced by a pickle whose load writes a marker"], found.summary
    assert "bytes appended to meta.json" in found.details["accepted"]
    assert _state(folder) == before and _state(outside) == outside_before
    assert list(work.iterdir()) == [], "the temporary copies must be removed"


def test_a_target_command_that_floods_its_output_costs_a_bounded_read():
    """A verify command (or target interpreter) printing 64 MiB: the assessor reads back at most its cap,
    the start of stdout and the end of stderr, where the last error line is."""
    import sys

    from security_tests.subprocesses import run_bounded

    flood = "import sys; sys.stdout.write('x' * (64 << 20)); sys.stderr.write('y' * (8 << 20) + 'last line')"
    ran = run_bounded([sys.executable, "-c", flood], timeout=60, cap=64 << 10)
    assert ran.returncode == 0 and len(ran.stdout) == 64 << 10 and len(ran.stderr) == 64 << 10
    assert ran.stderr.endswith(b"last line")
