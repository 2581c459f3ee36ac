"""Faults injected at the operating system's boundary, for what a test cannot make the machine do on demand."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from fraudpipe.serving import audit


@contextlib.contextmanager
def full_disk() -> Iterator[None]:
    """The kernel's answer once the disk is full, to every write the audit log makes: the open still works."""
    class FullDisk:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def write(fd, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    real, audit.os = audit.os, FullDisk()
    try:
        yield
    finally:
        audit.os = real
