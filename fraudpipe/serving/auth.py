"""API-key authentication: keys are held only as SHA-256 hashes and compared in constant time.

The key id, never the key, is what the rest of the service (the limiter, the audit log) sees.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from flask import Flask

from fraudpipe.errors import ConfigError
from fraudpipe.serving.errors import ApiError

HEADER = "X-API-Key"
_ENVIRON_NAME = "HTTP_" + HEADER.upper().replace("-", "_")
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def presented_key(asked) -> str | None:
    """The request's key header, read from the environ as werkzeug's ``headers.get`` reads it (a third of
    its cost: the limiter and auth read it on every request)."""
    return asked.environ.get(_ENVIRON_NAME)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyStore:
    def __init__(self, entries: dict[str, bytes]) -> None:
        self._entries = list(entries.items())
        self._last: tuple[object, str | None] = (object(), None)

    @classmethod
    def from_settings(cls, keys: tuple[str, ...], keys_file: Path | None) -> "KeyStore":
        entries = {f"env-{key_hash(key).hex()[:8]}": key_hash(key) for key in keys}
        if keys_file is not None:
            entries.update(read_keys_file(keys_file))
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def identify(self, presented: str | None) -> str | None:
        """The key id for a valid key; every entry is compared, so timing does not tell which matched."""
        if not presented:
            return None
        last_presented, last_found = self._last
        if presented is last_presented:  # the limiter and auth ask about the same header object in turn
            return last_found
        digest = key_hash(presented)
        found = None
        for key_id, expected in self._entries:
            if hmac.compare_digest(digest, expected):
                found = key_id
        self._last = (presented, found)
        return found

    def require(self, presented: str | None) -> str:
        key_id = self.identify(presented)
        if key_id is None:
            reason = "missing API key" if not presented else "invalid API key"
            raise ApiError(401, "unauthorized", f"{reason}: send a valid key in the {HEADER} header",
                           headers={"WWW-Authenticate": HEADER})
        return key_id


def install(app: Flask, service) -> None:
    """Every call to the model needs a key; health and the API document stay public (health's details
    only for a key holder). With no key configured nobody can call the model: not ready, and 503."""
    keys = service.keys
    service.identify = lambda req: keys.identify(presented_key(req))
    service.readiness_checks.append(lambda: None if len(keys) else "auth: no API keys configured")

    def require_key(asked, context) -> None:
        if asked.endpoint == "predict":
            if not len(keys):
                raise ApiError(503, "not_ready", "no API keys are configured; the service refuses every caller")
            context.key_id = keys.require(presented_key(asked))

    service.checks.append(require_key)


def read_keys_file(path: Path) -> dict[str, bytes]:
    """Lines of ``<key id> <sha256 hex>``; blank lines and ``#`` comments are skipped."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read API keys file ({exc.strerror})") from None
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not _KEY_ID.match(parts[0]) or not re.fullmatch(r"[0-9a-f]{64}", parts[1]):
            raise ConfigError(f"{path}:{number}: expected '<key id> <sha256 hex>'")
        entries[parts[0]] = bytes.fromhex(parts[1])
    return entries


def add_key(path: Path | None, name: str) -> str:
    """Create a key, append only its hash; the caller shows the key once."""
    if path is None:
        raise ConfigError("FRAUDPIPE_API_KEYS_FILE is set empty; set it to the file that holds the key hashes")
    if not _KEY_ID.match(name):
        raise ConfigError(f"key id {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    path = Path(path)
    existing = read_keys_file(path) if path.exists() else {}
    if name in existing:
        raise ConfigError(f"{path}: key id {name!r} exists already")
    key = secrets.token_urlsafe(32)
    while key.startswith("-"):  # keys go on command lines, where a leading dash reads as an option
        key = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write(f"{name} {key_hash(key).hex()}\n")
    return key
