"""One settings object, fed by ``FRAUDPIPE_*`` environment variables; nothing else reads the environment.

Every value is validated when the object is built (``__post_init__``), whether it came from the
environment, from ``Settings(...)`` in code or from ``with_overrides``: a value the service cannot use
as written must stop it with a one-line ``ConfigError``, never fall back to "no limit" or "no log".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from fraudpipe.errors import ConfigError

_CONFIG_HOME = Path(os.environ.get("XDG_CONFIG_HOME", "~/.config")).expanduser() / "fraudpipe"
DEFAULT_API_KEYS_FILE = _CONFIG_HOME / "api-keys"
"""Where ``keys new`` stores key hashes and ``serve`` reads them unless FRAUDPIPE_API_KEYS_FILE says otherwise."""

MAX_BODY_BYTES_LIMIT = 1_048_576
MAX_TRUSTED_PROXIES = 10
MAX_CLIENT_TIMEOUT = 60  # seconds; the server's header timeout accepts at most a minute
MIN_API_KEY_LENGTH = 16
MIN_API_KEY_DISTINCT = 8
RATE_GRANULARITIES = ("second", "minute", "hour", "day")
STORAGE_SCHEMES = ("memory", "redis", "rediss")
MAX_RATE_COUNT = 1_000_000_000
_TRUE, _FALSE = {"1", "true", "yes"}, {"0", "false", "no"}


def _var(name: str) -> str:
    return f"FRAUDPIPE_{name.upper()}"


@dataclass(frozen=True)
class Settings:
    """Every knob; each field is read from ``FRAUDPIPE_<FIELD NAME IN CAPITALS>``."""

    artifacts_dir: Path = Path("artifacts/model")
    signing_key: Path = _CONFIG_HOME / "signing-key.pem"
    trusted_key: Path = _CONFIG_HOME / "trusted-key.pub"
    api_keys: tuple[str, ...] = ()
    api_keys_file: Path | None = DEFAULT_API_KEYS_FILE
    rate_limit: str = "100/minute"
    rate_limit_storage: str = "memory://"
    audit_log: Path | None = Path("artifacts/audit.jsonl")
    trusted_proxies: int = 0
    max_body_bytes: int = 4096
    monitor_block: bool = False
    client_timeout: int = 5

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Called on every construction, so code-built and overridden settings fail as closed as the environment."""
        for name in ("artifacts_dir", "signing_key", "trusted_key"):
            if not isinstance(getattr(self, name), Path):
                raise ConfigError(f"{_var(name)} must be a path")
        for name in ("api_keys_file", "audit_log"):
            if not isinstance(getattr(self, name), (Path, type(None))):
                raise ConfigError(f"{_var(name)} must be a path or empty")
        check_api_keys(self.api_keys)
        check_rate_limit(self.rate_limit)
        check_storage(self.rate_limit_storage)
        _check_int("trusted_proxies", self.trusted_proxies, 0, MAX_TRUSTED_PROXIES)
        _check_int("max_body_bytes", self.max_body_bytes, 1, MAX_BODY_BYTES_LIMIT)
        _check_int("client_timeout", self.client_timeout, 1, MAX_CLIENT_TIMEOUT)
        if not isinstance(self.monitor_block, bool):
            raise ConfigError(f"{_var('monitor_block')} accepts true or false")
        if self.audit_log is not None:
            check_writable(self.audit_log)
        check_trusted_key_outside(self.trusted_key, self.artifacts_dir)
        if self.api_keys_file is not None and self.api_keys_file.exists():
            from fraudpipe.serving.auth import read_keys_file

            read_keys_file(self.api_keys_file)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(_var(field.name))
            if raw is not None:
                values[field.name] = _parse(field.name, raw)
        return replace(cls(**values), **overrides)

    @property
    def readable_api_keys_file(self) -> Path | None:
        """The keys file the service reads: the default one (``keys new`` writes it) may not exist yet, which
        means no keys from it; a file named in FRAUDPIPE_API_KEYS_FILE must be readable."""
        path = self.api_keys_file
        return None if path is None or (path == DEFAULT_API_KEYS_FILE and not path.exists()) else path

    def with_overrides(self, **overrides) -> "Settings":
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


def check_api_keys(keys: tuple[str, ...]) -> None:
    """A short or low-variety key is guessable; the message names the position, never the key."""
    if not isinstance(keys, tuple) or not all(isinstance(key, str) for key in keys):
        raise ConfigError(f"{_var('api_keys')} must be a comma-separated list of keys")
    for position, key in enumerate(keys, 1):
        if len(key) < MIN_API_KEY_LENGTH or len(set(key)) < MIN_API_KEY_DISTINCT:
            raise ConfigError(f"{_var('api_keys')}: key #{position} is too weak; each key needs at least "
                              f"{MIN_API_KEY_LENGTH} characters and {MIN_API_KEY_DISTINCT} distinct ones "
                              "(python -m fraudpipe keys new makes one)")


def check_rate_limit(rate: str) -> None:
    """Parsed the way flask-limiter will parse it, so a string it cannot use never means "no limit"."""
    from limits import parse_many

    accepts = (f"accepts one positive count up to {MAX_RATE_COUNT:,} per second, minute, hour or day, "
               "e.g. 100/minute")
    if not isinstance(rate, str) or any(separator in rate for separator in ";,|"):
        raise ConfigError(f"{_var('rate_limit')} {accepts} (the limiter enforces exactly one rule); got {rate!r}")
    try:
        items = parse_many(rate)
    except ValueError:
        items = []
    for item in items:
        if not 1 <= item.amount <= MAX_RATE_COUNT or item.multiples != 1 \
                or item.GRANULARITY.name not in RATE_GRANULARITIES:
            items = []
            break
    if len(items) != 1:
        raise ConfigError(f"{_var('rate_limit')} {accepts}; got {rate!r}")


def check_storage(uri: str) -> None:
    """Only stores that share counts (or one in-process store) are meaningful limits."""
    accepts = "accepts memory:// or redis://HOST:PORT (rediss:// for TLS)"
    try:
        parts = urlsplit(uri) if isinstance(uri, str) else None
        port = parts.port if parts else None
    except ValueError:
        parts = port = None
    if parts is not None and parts.scheme == "memory" and uri == "memory://":
        return
    scheme = uri.split("://", 1)[0] if isinstance(uri, str) else ""
    if parts is None or scheme not in STORAGE_SCHEMES[1:] or not parts.hostname or port is None:
        raise ConfigError(f"{_var('rate_limit_storage')} {accepts}")


def check_writable(path: Path) -> None:
    """The audit log must be writable before the first request: a service that cannot log must not start.

    Creates nothing: the nearest existing ancestor must be a writable folder and no part of the path a file.
    """
    path = Path(path)
    if not path.name.strip():
        raise ConfigError(f"{_var('audit_log')} accepts a file path (or empty: no log), got {str(path)!r}")
    if path.is_dir():
        raise ConfigError(f"{_var('audit_log')}: {path} is a folder; it accepts a file path (or empty: no log)")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{_var('audit_log')}: {path} is not a regular file (a device such as /dev/null would "
                          "discard every record); it accepts a file path (or empty: no log)")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{_var('audit_log')}: {path} is not writable")
        return
    folder = path.parent.absolute()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{_var('audit_log')}: cannot create {path} ({folder} is not a writable folder)")


def check_trusted_key_outside(trusted_key: Path, artifacts_dir: Path) -> None:
    """A key that ships with the artifacts vouches for whatever an attacker writes beside it."""
    key, folder = Path(os.path.realpath(trusted_key)), Path(os.path.realpath(artifacts_dir))
    if key == folder or folder in key.parents:
        raise ConfigError(f"{_var('trusted_key')} must not lie inside {_var('artifacts_dir')} ({folder}): "
                          "whoever can write the artifacts could then choose the key that verifies them")


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{_var(name)} accepts a whole number from {low} to {high:,}, got {value!r}")


def _parse(name: str, raw: str):
    if name in {"artifacts_dir", "signing_key", "trusted_key"}:
        return Path(raw).expanduser()
    if name in {"api_keys_file", "audit_log"}:
        return Path(raw).expanduser() if raw else None
    if name == "api_keys":
        return tuple(key.strip() for key in raw.split(",") if key.strip())
    if name == "monitor_block":
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ConfigError(f"{_var(name)} accepts true or false (also 1/0, yes/no), got {raw!r}")
        return word in _TRUE
    if name in {"trusted_proxies", "max_body_bytes", "client_timeout"}:
        if not raw.strip().isascii() or not raw.strip().isdigit():
            raise ConfigError(f"{_var(name)} accepts a whole number (digits only), got {raw!r}")
        return int(raw.strip())
    return raw.strip()
