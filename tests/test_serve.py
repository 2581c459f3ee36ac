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


def test_keys_new_needs_no_setup_and_serve_reads_the_same_default_file(tmp_path):
    """The first key of a fresh machine: no variable set, the hash lands beside the signing keys."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUDPIPE_", "XDG_CONFIG_HOME"))}
    env["HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "fraudpipe", "keys", "new", "--name", "alice"], env=env,
                            capture_output=True, text=True)
    default = tmp_path / ".config" / "fraudpipe" / "api-keys"
    assert result.returncode == 0 and str(default) in result.stderr, result.stderr
    assert set(read_keys_file(default)) == {"alice"}
    probe = "from fraudpipe.settings import Settings; print(Settings.from_env().api_keys_file)"
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout.strip() \
        == str(default)


def test_a_missing_default_keys_file_means_no_keys_but_a_named_one_must_exist(tmp_path):
    from fraudpipe.serving.auth import KeyStore
    from fraudpipe.settings import DEFAULT_API_KEYS_FILE

    if not DEFAULT_API_KEYS_FILE.exists():
        assert Settings().readable_api_keys_file is None
    named = Settings(api_keys_file=tmp_path / "named-but-missing", audit_log=None)
    with pytest.raises(ConfigError, match="cannot read API keys file"):
        KeyStore.from_settings((), named.readable_api_keys_file)


def test_serve_says_why_it_is_not_ready_on_its_console_once_per_reason(tmp_path, capsys):
    from fraudpipe.serving.server import startup_reasons

    settings = Settings(artifacts_dir=tmp_path / "nothing-trained-here", api_keys=(), api_keys_file=None,
                        audit_log=None)
    reasons = startup_reasons(settings, "hardened")
    assert any(r.startswith("artifacts:") and str(tmp_path / "nothing-trained-here") in r for r in reasons), reasons
    assert any(r.startswith("auth: no API keys") for r in reasons), reasons
    assert len(reasons) == len(set(reasons))


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
