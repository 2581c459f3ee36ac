import pytest

from fraudpipe.cli import main
from fraudpipe.errors import ConfigError
from fraudpipe.serving.auth import read_keys_file
from fraudpipe.serving.server import check_serving, is_loopback
from fraudpipe.settings import Settings


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("10.0.0.5", False), ("example.org", False)])
def test_loopback_detection(host, loopback):
    assert is_loopback(host) is loopback


def test_serve_refuses_the_unsafe_combinations():
    with pytest.raises(ConfigError, match="no authentication"):
        check_serving(Settings(), "inherited", "0.0.0.0", 1)
    with pytest.raises(ConfigError, match="would each count"):
        check_serving(Settings(), "hardened", "127.0.0.1", 2)
    check_serving(Settings(rate_limit_storage="redis://127.0.0.1:6379"), "hardened", "0.0.0.0", 2)
    check_serving(Settings(), "inherited", "127.0.0.1", 1)


def test_keys_new_prints_the_key_once_and_stores_only_its_hash(tmp_path, monkeypatch, capsys):
    keys_file = tmp_path / "keys.txt"
    monkeypatch.setenv("FRAUDPIPE_API_KEYS_FILE", str(keys_file))
    assert main(["keys", "new", "--name", "partner-b"]) == 0
    key = capsys.readouterr().out.strip()
    assert len(key) >= 40 and key not in keys_file.read_text()
    assert set(read_keys_file(keys_file)) == {"partner-b"}
    assert keys_file.stat().st_mode & 0o777 == 0o600
    assert main(["keys", "new", "--name", "bad name!"]) == 2


def test_monitor_command_replays_a_shared_audit_log(tmp_path, capsys):
    import json

    log = tmp_path / "audit.jsonl"
    base = [120.0, 14.0, 2.0, 0.0]
    with open(log, "w") as handle:
        for hour in range(10):
            for worker_client in ("k-prober", f"k-benign-{hour}"):
                features = base[:1] + [float(hour)] + base[2:] if worker_client == "k-prober" else [30.0 + hour * 7, 12, hour % 4, 0]
                handle.write(json.dumps({"key_id": worker_client, "features": features, "status": 200}) + "\n")
        handle.write("{torn li")
    assert main(["monitor", str(log)]) == 0
    alerts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["client_identity"], a["detector"]) for a in alerts] == [("k-prober", "probing")]
    assert main(["monitor", str(tmp_path / "missing.jsonl")]) == 2
