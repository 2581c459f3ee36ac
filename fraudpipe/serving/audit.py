"""The audit trail: one JSON line per request, written with one ``write`` on an O_APPEND descriptor.

One unbuffered append per record means a record is in the kernel before the response leaves, so a
killed process loses nothing it answered, and several workers appending to one file never interleave
within a line.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
from flask import Flask


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._where = os.fspath(self.path)  # stat'ed on every write: a str spares the Path's conversion
        self._lock = threading.Lock()
        self._failure: str | None = None
        self._fd, self._inode = self._open()

    def _open(self) -> tuple[int, tuple[int, int]]:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        ours = os.fstat(fd)
        return fd, (ours.st_dev, ours.st_ino)

    def _reopen_if_moved(self) -> None:
        """A log rotated or deleted under the service is reopened at its path, so no record goes to an inode
        nobody will read; if the path cannot be opened the write fails and the request gets 503."""
        try:
            on_disk = os.stat(self._where)
            if (on_disk.st_dev, on_disk.st_ino) == self._inode:
                return
        except FileNotFoundError:
            pass
        fd, inode = self._open()
        os.close(self._fd)
        self._fd, self._inode = fd, inode

    def write(self, record: dict) -> None:
        line = record_line(record)
        with self._lock:
            try:
                self._reopen_if_moved()
                os.write(self._fd, line)
            except OSError as exc:
                self._failure = f"audit log: last write failed ({exc.strerror})"
                raise
            self._failure = None

    def unwritable(self) -> str | None:
        """Why a record written now would be lost: the last write failed (a full disk), or the file, or the
        folder it would be reopened in after a rotation, does not accept writes."""
        if self._failure:
            return self._failure
        target = self.path if self.path.exists() else self.path.parent
        if not os.access(target, os.W_OK):
            return "audit log: not writable"
        return None

    def close(self) -> None:
        os.close(self._fd)


def record_line(record: dict) -> bytes:
    """One JSON line; orjson writes it in a fraction of the standard library's time (this runs on every
    request). Text orjson refuses (a lone surrogate) is written by the standard library, escaped."""
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()


def install(app: Flask, service) -> None:
    """Writes the request record and whatever earlier sinks (the monitor's alerts) added to it."""
    if service.settings.audit_log is None:
        return
    log = AuditLog(service.settings.audit_log)
    service.readiness_checks.append(log.unwritable)

    def write_all(records: list[dict], context) -> list[dict]:
        for record in records:
            log.write(record)
        return []

    service.sinks.append(write_all)


_THIS_SECOND: list[tuple[int, str]] = [(-1, "")]  # the last second a record was made in, and its text


def utc_timestamp() -> str:
    """``datetime.now(timezone.utc).isoformat(timespec="microseconds")`` at a third of its cost: the text
    up to the second is made once a second (every request writes one). Read and replaced as one pair, so
    a thread never joins one second's text to another's fraction."""
    second, micros = divmod(time.time_ns() // 1000, 1_000_000)
    cached, text = _THIS_SECOND[0]
    if second != cached:
        text = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
        _THIS_SECOND[0] = (second, text)
    return "%s%06d+00:00" % (text, micros)


def request_record(status: int, asked, context) -> dict:
    """What a SIEM needs to reconstruct a probing campaign: who, when, what was asked and answered."""
    started = getattr(context, "started", None)
    return {
        "ts": utc_timestamp(),
        "request_id": getattr(context, "request_id", None),
        "client": asked.remote_addr,
        "key_id": getattr(context, "key_id", None),
        "method": asked.method,
        "path": asked.path,
        "status": status,
        "features": getattr(context, "features", None),
        "prediction": getattr(context, "prediction", None),
        "probability": getattr(context, "probability", None),
        "reason": getattr(context, "reason", None),
        "latency_ms": int((time.perf_counter() - started) * 1e6) / 1000 if started is not None else None,  # not round()
    }


def read_records(path: Path) -> list[dict]:
    """Parse a log back; a torn last line (a crash mid-write) is skipped, not fatal."""
    records = []
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return records
    for line in text.split("\n"):  # not splitlines(): U+2028 or U+0085 in a caller's text would cut a record in two
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
