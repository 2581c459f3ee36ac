"""The audit log follows its path whichever way a name on it changes under the service: a rotation by
another process, its folder moved and made again (twice), a moved grandparent folder."""

import subprocess

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
    (tmp_path / "logs").rename(tmp_path / "logs.older")
    (tmp_path / "logs").mkdir()
    _written(log, 1)
    folders = ("logs.old", "logs.older", "logs")
    assert [len(read_records(tmp_path / name / "audit.jsonl")) for name in folders] == [1, 1, 1]


def test_a_moved_grandparent_folder_made_again_gets_the_next_record(tmp_path):
    log = AuditLog(tmp_path / "var" / "logs" / "audit.jsonl")
    _written(log, 1)
    (tmp_path / "var").rename(tmp_path / "var.old")
    (tmp_path / "var" / "logs").mkdir(parents=True)
    _written(log, 1)
    assert len(read_records(tmp_path / "var" / "logs" / "audit.jsonl")) == 1
