"""The audit log follows its path: a rotation by another process, a moved folder, a moved grandparent, a
machine without inotify. The path is stat'ed only when its folder's names changed (``FolderChanges``), so
each way a name can change under the service is tried here."""

import subprocess

import pytest

from fraudpipe.serving import audit
from fraudpipe.serving.audit import AuditLog, read_records


def _written(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.write({"n": i})


def test_a_rotation_by_another_process_sends_the_next_record_to_the_path(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    _written(log, 2)
    subprocess.run(["mv", str(tmp_path / "audit.jsonl"), str(tmp_path / "audit.1.jsonl")], check=True)
    _written(log, 1)
    subprocess.run(["rm", str(tmp_path / "audit.jsonl")], check=True)
    _written(log, 1)
    assert len(read_records(tmp_path / "audit.1.jsonl")) == 2 and len(read_records(tmp_path / "audit.jsonl")) == 1


def test_a_moved_folder_replaced_at_the_path_gets_the_next_record(tmp_path):
    log = AuditLog(tmp_path / "logs" / "audit.jsonl")
    _written(log, 1)
    (tmp_path / "logs").rename(tmp_path / "logs.old")
    (tmp_path / "logs").mkdir()
    _written(log, 1)
    (tmp_path / "logs").rename(tmp_path / "logs.older")  # the new folder is watched in turn
    (tmp_path / "logs").mkdir()
    _written(log, 1)
    folders = ("logs.old", "logs.older", "logs")
    assert [len(read_records(tmp_path / name / "audit.jsonl")) for name in folders] == [1, 1, 1]


def test_a_moved_grandparent_is_noticed_within_the_recheck_period(tmp_path, monkeypatch):
    log = AuditLog(tmp_path / "var" / "logs" / "audit.jsonl")
    _written(log, 1)
    (tmp_path / "var").rename(tmp_path / "var.old")
    (tmp_path / "var" / "logs").mkdir(parents=True)
    monkeypatch.setattr(AuditLog, "RECHECK_SECONDS", 0.0)
    _written(log, 1)
    assert len(read_records(tmp_path / "var" / "logs" / "audit.jsonl")) == 1


def test_without_inotify_every_write_checks_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(audit, "folder_changes", lambda: None)
    log = AuditLog(tmp_path / "audit.jsonl")
    _written(log, 1)
    (tmp_path / "audit.jsonl").rename(tmp_path / "audit.1.jsonl")
    _written(log, 1)
    assert len(read_records(tmp_path / "audit.jsonl")) == 1


def test_a_quiet_folder_costs_no_stat_and_a_renamed_log_still_costs_one(tmp_path, monkeypatch):
    log = AuditLog(tmp_path / "audit.jsonl")
    _written(log, 1)
    looked = []
    real_stat = audit.os.stat
    monkeypatch.setattr(audit.os, "stat", lambda *a, **k: looked.append(a) or real_stat(*a, **k))
    _written(log, 50)
    assert looked == []
    (tmp_path / "audit.jsonl").rename(tmp_path / "audit.1.jsonl")
    _written(log, 1)
    assert len(looked) == 1 and len(read_records(tmp_path / "audit.jsonl")) == 1


@pytest.mark.parametrize("limit_reached", ["init", "watch"])
def test_inotify_limits_fall_back_to_a_stat_per_write_never_to_a_lost_record(tmp_path, monkeypatch, limit_reached):
    def refused(*args):
        raise OSError(24 if limit_reached == "init" else 28, "inotify limit reached")

    if limit_reached == "init":
        monkeypatch.setattr(audit, "_WATCHERS", {})
        monkeypatch.setattr(audit.FolderChanges, "__init__", refused)
    else:
        monkeypatch.setattr(audit.FolderChanges, "watch", refused)
    log = AuditLog(tmp_path / "audit.jsonl")
    _written(log, 1)
    (tmp_path / "audit.jsonl").rename(tmp_path / "audit.1.jsonl")
    _written(log, 1)
    assert len(read_records(tmp_path / "audit.jsonl")) == 1
