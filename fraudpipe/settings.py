"""One settings object, fed by ``FRAUDPIPE_*`` environment variables; nothing else reads the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from fraudpipe.errors import ConfigError

_CONFIG_HOME = Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")).expanduser() / "fraudpipe"


@dataclass(frozen=True)
class Settings:
    """Every knob; each field is read from ``FRAUDPIPE_<FIELD NAME IN CAPITALS>``."""

    artifacts_dir: Path = Path("artifacts/model")
    signing_key: Path = _CONFIG_HOME / "signing-key.pem"
    trusted_key: Path = _CONFIG_HOME / "trusted-key.pub"
    api_keys: tuple[str, ...] = ()
    api_keys_file: Path | None = None
    rate_limit: str = "100/minute"
    rate_limit_storage: str = "memory://"
    audit_log: Path | None = Path("artifacts/audit.jsonl")
    trusted_proxies: int = 0
    max_body_bytes: int = 4096
    monitor_block: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(f"FRAUDPIPE_{field.name.upper()}")
            if raw is not None:
                values[field.name] = _parse(field.name, raw)
        return replace(cls(**values), **overrides)

    def with_overrides(self, **overrides) -> "Settings":
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


def _parse(name: str, raw: str):
    if name in {"artifacts_dir", "signing_key", "trusted_key"}:
        return Path(raw).expanduser()
    if name in {"api_keys_file", "audit_log"}:
        return Path(raw).expanduser() if raw.strip() else None
    if name == "api_keys":
        return tuple(key.strip() for key in raw.split(",") if key.strip())
    if name == "monitor_block":
        if raw.strip().lower() not in {"1", "true", "yes", "0", "false", "no", ""}:
            raise ConfigError(f"FRAUDPIPE_MONITOR_BLOCK must be true or false, got {raw!r}")
        return raw.strip().lower() in {"1", "true", "yes"}
    if name in {"trusted_proxies", "max_body_bytes"}:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"FRAUDPIPE_{name.upper()} must be a whole number, got {raw!r}") from None
        if value < 0:
            raise ConfigError(f"FRAUDPIPE_{name.upper()} must not be negative, got {value}")
        return value
    return raw
