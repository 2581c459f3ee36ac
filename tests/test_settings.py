"""Every setting is validated where it is built: a value the service cannot use stops it, never opens it."""

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from fraudpipe.errors import ConfigError
from fraudpipe.settings import Settings

GOOD_KEY = secrets.token_urlsafe(24)


@pytest.mark.parametrize("variable, value", [
    ("FRAUDPIPE_RATE_LIMIT", "5/min"),
    ("FRAUDPIPE_RATE_LIMIT", "0/minute"),
    ("FRAUDPIPE_RATE_LIMIT", "100/month"),
    ("FRAUDPIPE_RATE_LIMIT", "100 per 2 minutes"),
    ("FRAUDPIPE_RATE_LIMIT", ""),
    ("FRAUDPIPE_RATE_LIMIT_STORAGE", "mongodb://db:27017"),
    ("FRAUDPIPE_RATE_LIMIT_STORAGE", "redis://cache"),
    ("FRAUDPIPE_RATE_LIMIT_STORAGE", "memory://elsewhere"),
    ("FRAUDPIPE_MAX_BODY_BYTES", "0"),
    ("FRAUDPIPE_MAX_BODY_BYTES", "2000000"),
    ("FRAUDPIPE_TRUSTED_PROXIES", "11"),
    ("FRAUDPIPE_TRUSTED_PROXIES", "-1"),
    ("FRAUDPIPE_MONITOR_BLOCK", "maybe"),
    ("FRAUDPIPE_MONITOR_BLOCK", ""),
])
def test_unusable_value_is_one_line_naming_the_variable(variable, value, tmp_path):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({variable: value, "FRAUDPIPE_AUDIT_LOG": str(tmp_path / "a.jsonl")})
    message = str(refused.value)
    assert variable in message and "accepts" in message and "\n" not in message


@pytest.mark.parametrize("key", ["short", "aaaaaaaaaaaaaaaaaaaaaaaa", "abababababababab1234"])
def test_weak_api_key_is_refused_without_echoing_it(key):
    with pytest.raises(ConfigError, match="FRAUDPIPE_API_KEYS") as refused:
        Settings.from_env({"FRAUDPIPE_API_KEYS": f"{GOOD_KEY},{key}"})
    assert key not in str(refused.value) and GOOD_KEY not in str(refused.value)


def test_code_built_and_overridden_settings_are_validated_too(tmp_path):
    with pytest.raises(ConfigError, match="FRAUDPIPE_RATE_LIMIT"):
        Settings(rate_limit="5/min")
    base = Settings(api_keys=(GOOD_KEY,), rate_limit="100/minute", audit_log=None)
    with pytest.raises(ConfigError, match="FRAUDPIPE_RATE_LIMIT"):
        base.with_overrides(rate_limit="lots")
    with pytest.raises(ConfigError, match="FRAUDPIPE_MAX_BODY_BYTES"):
        base.with_overrides(max_body_bytes=True)
    with pytest.raises(ConfigError, match="FRAUDPIPE_MONITOR_BLOCK"):
        base.with_overrides(monitor_block="false")


def test_good_values_are_accepted(tmp_path):
    settings = Settings.from_env({"FRAUDPIPE_RATE_LIMIT": "10 per second",
                                  "FRAUDPIPE_RATE_LIMIT_STORAGE": "rediss://cache.internal:6380/0",
                                  "FRAUDPIPE_API_KEYS": GOOD_KEY, "FRAUDPIPE_MONITOR_BLOCK": "yes",
                                  "FRAUDPIPE_AUDIT_LOG": str(tmp_path / "new" / "audit.jsonl"),
                                  "FRAUDPIPE_MAX_BODY_BYTES": "1048576", "FRAUDPIPE_TRUSTED_PROXIES": "10"})
    assert settings.monitor_block is True and settings.max_body_bytes == 1_048_576


def test_audit_log_that_cannot_be_created_is_refused_at_construction(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="FRAUDPIPE_AUDIT_LOG"):
        Settings(audit_log=tmp_path / "file" / "audit.jsonl")
    with pytest.raises(ConfigError, match="FRAUDPIPE_AUDIT_LOG"):
        Settings(audit_log=tmp_path)
    assert not (tmp_path / "new").exists()
    Settings(audit_log=tmp_path / "new" / "audit.jsonl")
    assert not (tmp_path / "new").exists(), "validation must create nothing"


def test_serve_with_an_unparseable_rate_limit_exits_2_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FRAUDPIPE_RATE_LIMIT": "5/min",
           "FRAUDPIPE_AUDIT_LOG": str(tmp_path / "audit.jsonl"), "FRAUDPIPE_ARTIFACTS_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "fraudpipe", "serve", "--port", "1"], capture_output=True,
                            text=True, env=env, cwd=Path(__file__).parents[1], timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "FRAUDPIPE_RATE_LIMIT" in lines[0] and "Traceback" not in result.stderr
