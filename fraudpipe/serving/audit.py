"""The audit trail: one JSON line per request, written with one ``write`` on an O_APPEND descriptor.

One unbuffered append per record means a record is in the kernel before the response leaves, so a
killed process loses nothing it answered, and several workers appending to one file never interleave
within a line.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        os.close(self._fd)


def read_records(path: Path) -> list[dict]:
    """Parse a log back; a torn last line (a crash mid-write) is skipped, not fatal."""
    records = []
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return records
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
