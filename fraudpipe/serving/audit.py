"""The audit trail: one JSON line per request, written with one ``write`` on an O_APPEND descriptor.

One unbuffered append per record means a record is in the kernel before the response leaves, so a
killed process loses nothing it answered, and several workers appending to one file never interleave
within a line.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
from flask import Flask

from fraudpipe.serving.ratelimit_store import this_process

# inotify(7): a name in the folder moved, created or deleted; the folder itself moved or deleted.
_NAME_CHANGES = 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800
_ONLY_FOLDERS = 0x01000000


class FolderChanges:
    """Whether any name changed in the watched folders since this process last looked, from one inotify
    instance per process: a ``poll`` of its queue, which never reads the log's inode. The kernel queues the
    event before the ``rename`` or ``unlink`` that caused it returns, so a request that follows a rotation
    sees it."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._add = libc.inotify_add_watch
        self._queue = select.poll()
        self._queue.register(self._fd, select.POLLIN)
        self.seen = 0  # events drained so far, counted in batches

    def watch(self, folder: str) -> None:
        if self._add(self._fd, os.fsencode(folder), _NAME_CHANGES | _ONLY_FOLDERS) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")

    def changes(self) -> int:
        """A count that moves whenever a watched name changed (or the queue overflowed) since the last call:
        moved before the queue is drained, so a thread that finds it drained finds the count moved."""
        if self._queue.poll(0):
            self.seen += 1
            try:
                while os.read(self._fd, 65536):
                    pass
            except BlockingIOError:
                pass
        return self.seen


_WATCHERS: dict[int, FolderChanges | None] = {}  # per process: a forked child reads its own queue


def folder_changes() -> FolderChanges | None:
    """This process's watcher; None where inotify cannot be had (not Linux, its limits reached)."""
    pid = this_process()
    if pid not in _WATCHERS:
        try:
            _WATCHERS[pid] = FolderChanges()
        except (OSError, AttributeError):
            _WATCHERS[pid] = None
    return _WATCHERS[pid]


class AuditLog:
    RECHECK_SECONDS = 1.0  # the path is stat'ed at least this often however quiet its folder

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._where, self._folder = os.fspath(self.path), os.fspath(self.path.parent)
        self._lock = threading.Lock()
        self._failure: str | None = None
        self._fd, self._inode = self._open()
        self._looked = (-1, -1, -1.0)  # (process, folder changes, monotonic time) at the last stat
        self._unwatched = False

    def _open(self) -> tuple[int, tuple[int, int]]:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        ours = os.fstat(fd)
        return fd, (ours.st_dev, ours.st_ino)

    def _reopen_if_moved(self) -> None:
        """A log rotated or deleted under the service is reopened at its path, so no record goes to an inode
        nobody will read; if the path cannot be opened the write fails and the request gets 503."""
        if not self._may_have_moved():
            return
        try:
            on_disk = os.stat(self._where)
            if (on_disk.st_dev, on_disk.st_ino) == self._inode:
                return
        except FileNotFoundError:
            pass
        fd, inode = self._open()
        os.close(self._fd)
        self._fd, self._inode = fd, inode
        self._looked = (-1, -1, -1.0)  # its folder may be a new one: watched again at the next write

    def _may_have_moved(self) -> bool:
        """Whether the path must be stat'ed before this write: a name in its folder changed since the last
        look (``FolderChanges``), a second passed (a moved grandparent folder, which a watch on the folder
        does not see), or inotify is not to be had. Under load a ``stat`` of the file the other workers
        append to cost more than the rest of the record."""
        watcher = folder_changes()
        if watcher is None or self._unwatched:
            return True
        pid, now, changes = this_process(), time.monotonic(), watcher.changes()
        looked_by, looked_changes, looked_at = self._looked
        if pid == looked_by and changes == looked_changes and now - looked_at < self.RECHECK_SECONDS:
            return False
        if pid != looked_by:  # the first write of this process (a forked worker watches for itself)
            try:
                watcher.watch(self._folder)
            except OSError:
                self._unwatched = True  # inotify's limits reached: every write stats, as without it
                return True
        self._looked = (pid, changes, now)
        return True

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
