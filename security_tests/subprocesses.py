"""The target's own commands (its ``verify``, its interpreter), run the way a target's answer is read:
no stdin, a deadline, and output written to a temporary file of which only a bounded part is read back,
so a command that prints gigabytes costs disk for a moment, never the assessor's memory."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: bytes
    stderr: bytes


def run_bounded(command: list[str], timeout: float, cap: int = 1 << 20) -> Ran:
    """``subprocess.run`` without ``capture_output``: at most ``cap`` bytes of each stream come back (the
    start of stdout, the end of stderr, where a last error line is). Raises what ``subprocess.run`` raises."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        done = subprocess.run(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=timeout)
        out.seek(0)
        head = out.read(cap)
        size = err.seek(0, 2)
        err.seek(max(0, size - cap))
        return Ran(done.returncode, head, err.read(cap))
