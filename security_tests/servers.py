"""Real servers on 127.0.0.1 for the live-target tests and benchmarks: redis-server, gunicorn and granian (through `python -m fraudpipe serve`).

Each is started on a free loopback port, waited for, and stopped (its whole process group) on exit,
also when the code inside the ``with`` fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """The whole process group, also when its leader has already gone: a server whose master died leaves
    its workers serving, and they must not outlive the test."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away redis-server (no persistence) on a free loopback port; yields its URL."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--protected-mode", "yes"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not answer PING within 10 s")
        yield f"redis://127.0.0.1:{port}"
    finally:
        _stop(process)


@contextlib.contextmanager
def redis_monitor(url: str) -> Iterator[dict[str, Counter]]:
    """Counts the commands Redis runs inside the block: ``client`` (each one a round trip) and ``lua``
    (run by a script inside one of those). The counts are filled in when the block ends."""
    host, port = url.removeprefix("redis://").split(":")
    counts: dict[str, Counter] = {"client": Counter(), "lua": Counter()}
    marker = f"fraudpipe-monitor-end-{os.getpid()}-{time.monotonic_ns()}"
    chunks: list[bytes] = []
    sock = socket.create_connection((host, int(port)), timeout=0.2)
    sock.sendall(b"MONITOR\r\n")

    def read() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and marker.encode() not in b"".join(chunks[-2:]):
            with contextlib.suppress(socket.timeout):
                data = sock.recv(65536)
                if not data:
                    return
                chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield counts
    finally:
        with socket.create_connection((host, int(port)), timeout=5) as other:
            other.sendall(f"ECHO {marker}\r\n".encode())
            other.recv(1024)
        reader.join(timeout=10)
        sock.close()
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        origin, _, command = line.partition("] ")
        if "[" in origin and command and marker not in command:
            counts["lua" if origin.endswith(" lua") else "client"][command.split('"')[1].lower()] += 1


def settings_env(settings, **extra: str) -> dict[str, str]:
    """The FRAUDPIPE_* environment that hands a Settings object to a server process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDPIPE_")}
    env.update({
        "FRAUDPIPE_ARTIFACTS_DIR": str(settings.artifacts_dir), "FRAUDPIPE_TRUSTED_KEY": str(settings.trusted_key),
        "FRAUDPIPE_SIGNING_KEY": str(settings.signing_key), "FRAUDPIPE_API_KEYS": ",".join(settings.api_keys),
        "FRAUDPIPE_RATE_LIMIT": settings.rate_limit, "FRAUDPIPE_RATE_LIMIT_STORAGE": settings.rate_limit_storage,
        "FRAUDPIPE_AUDIT_LOG": str(settings.audit_log or ""), "FRAUDPIPE_CLIENT_TIMEOUT": str(settings.client_timeout),
        "FRAUDPIPE_MONITOR_BLOCK": str(settings.monitor_block).lower(),
        "FRAUDPIPE_TRUSTED_PROXIES": str(settings.trusted_proxies),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    })
    env.update(extra)
    return env


def _children(pid: int) -> list[int]:
    return [int(child) for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    return [pid, *(p for child in _children(pid) for p in process_tree(child))]


class Server:
    def __init__(self, process: subprocess.Popen, url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def worker_pids(self) -> list[int]:
        return _children(self.process.pid)

    def owner_of(self, client_port: int) -> int | None:
        """The server process holding the accepted end of the loopback connection from ``client_port``: how
        a test knows which worker answers a connection (the kernel hands connections to workers as it likes)."""
        port = int(self.url.rsplit(":", 1)[1])
        local, remote = f"0100007F:{port:04X}", f"0100007F:{client_port:04X}"
        inode = next((fields[9] for fields in (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
                      if fields[1] == local and fields[2] == remote), None)
        for pid in process_tree(self.process.pid) if inode else ():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) == f"socket:[{inode}]" for fd in Path(f"/proc/{pid}/fd").iterdir()):
                    return pid
        return None

    def client_per_worker(self, new_client, workers: int, attempts: int = 128) -> list:
        """One kept-alive client connected to each of ``workers`` workers, in worker order: connections are
        opened a few at a time, concurrently, until every worker holds one (the kernel lets whichever worker
        wakes first accept, so one at a time they tend to land on the same worker)."""
        from concurrent.futures import ThreadPoolExecutor

        if workers == 1:
            return [new_client()]
        found: dict[int, object] = {}
        with ThreadPoolExecutor(workers * 2) as pool:
            for _ in range(0, attempts, workers * 2):
                batch = [new_client() for _ in range(workers * 2)]
                list(pool.map(lambda client: client.get("/health"), batch))
                for client in batch:
                    owner = self.owner_of(client.local_port())
                    if owner is not None:
                        found.setdefault(owner, client)
                if len(found) >= workers:
                    return list(found.values())[:workers]
        raise RuntimeError(f"connections reached {len(found)} of {workers} workers in {attempts} attempts")


@contextlib.contextmanager
def serve(command: list[str], env: dict[str, str], port: int, log: Path, timeout: float = 30) -> Iterator[Server]:
    """Start a server command, wait until /health answers, and stop it whatever happens."""
    with open(log, "ab") as handle:
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/health", timeout=1).status_code in (200, 503):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer /health within {timeout} s")
            time.sleep(0.1)
        yield Server(process, url, log)
    finally:
        _stop(process)


def fraudpipe_serve(settings, port: int, log: Path, workers: int = 2, profile: str = "hardened"):
    """``python -m fraudpipe serve``: the production path, with serve's own refusals."""
    command = [sys.executable, "-m", "fraudpipe", "serve", "--profile", profile, "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers)]
    return serve(command, settings_env(settings), port, log)


def gunicorn_direct(settings, port: int, log: Path, workers: int, app: str = "fraudpipe:create_app()",
                    preload: bool = False):
    """gunicorn without serve's checks: how the memory:// multi-worker hole is measured, and the seed baseline.
    ``preload`` builds the app before the fork, so every worker accepts from the first request (otherwise a
    worker still loading the model leaves a short burst to the others)."""
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--worker-class", "sync", "--graceful-timeout", "5", *(["--preload"] if preload else []), app]
    return serve(command, settings_env(settings), port, log)
