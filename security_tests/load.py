"""A bounded load on a loopback service: fixed clients, fixed duration, counted outcomes."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from fraudpipe.serving.server import is_loopback


@dataclass
class LoadResult:
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def responses(self) -> int:
        return sum(self.statuses.values())

    def as_dict(self) -> dict:
        ordered = sorted(self.latencies)
        return {"responses": self.responses, "statuses": self.statuses, "connection_errors": self.errors,
                "seconds": round(self.seconds, 3),
                "requests_per_second": round(self.responses / self.seconds, 1) if self.seconds else None,
                "median_latency_ms": round(ordered[len(ordered) // 2] * 1000, 3) if ordered else None}


def run_load(url: str, payload: dict, api_key: str | None, clients: int = 8, seconds: float = 5.0,
             max_requests: int | None = None, during=None) -> LoadResult:
    """``clients`` threads post ``payload`` until ``seconds`` pass or ``max_requests`` are sent.

    ``during``, if given, is called once from the main thread halfway through (to kill a worker).
    """
    from urllib.parse import urlparse

    if not is_loopback(urlparse(url).hostname or ""):
        raise ValueError(f"load is only sent to loopback addresses, not {url}")
    result, lock = LoadResult(), threading.Lock()
    sent = [0]
    deadline = time.monotonic() + seconds
    headers = {"X-API-Key": api_key} if api_key else {}

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                if max_requests is not None and sent[0] >= max_requests:
                    return
                sent[0] += 1
            started = time.perf_counter()
            try:
                response = session.post(f"{url}/predict", json=payload, headers=headers, timeout=5)
            except requests.RequestException:
                with lock:
                    result.errors += 1
                session = requests.Session()
                continue
            with lock:
                result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1
                result.latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    if during is not None:
        time.sleep(seconds / 2)
        during()
    for thread in threads:
        thread.join(timeout=seconds + 10)
    result.seconds = time.monotonic() - started
    return result
