"""What the test-only services' strong builds share: a sliding-window limiter and a strict JSON reader of typed
fields. Standard library only, so a service's ``verify`` command imports nothing heavy."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict, deque

Fields = dict[str, tuple[str, float, float]]
"""Field name -> (``float``, ``int`` or ``bool``, lowest, highest)."""


class SlidingWindow:
    """An exact sliding log per identity: at most ``limit`` answers in any ``seconds`` interval."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self._hits: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, identity: str) -> float:
        """0 when allowed, else seconds until the next request would be."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[identity]
            while hits and now - hits[0] >= self.seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return self.seconds - (now - hits[0])
            hits.append(now)
            return 0.0


def _no_duplicates(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def strict_json(raw: bytes, charset: str | None) -> object:
    """UTF-8 JSON that every parser reads alike (no BOM, no other charset, no duplicate key), else None."""
    if (charset or "utf-8").lower() not in ("utf-8", "utf8") or raw.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        return None


def typed_row(body: object, fields: Fields) -> list[float] | str:
    """Exactly ``fields``, each of its type and in its range, as a row in field order; else why not."""
    if not isinstance(body, dict) or set(body) != set(fields):
        return f"expected exactly the fields {', '.join(fields)}"
    row = []
    for name, (kind, low, high) in fields.items():
        value = body[name]
        if kind == "bool":
            if not isinstance(value, bool):
                return f"{name} must be true or false"
        elif isinstance(value, bool) or not isinstance(value, int if kind == "int" else (int, float)):
            return f"{name} must be a{'n integer' if kind == 'int' else ' number'}"
        if not (math.isfinite(float(value)) and low <= value <= high):
            return f"{name} must be between {low} and {high}"
        row.append(float(value))
    return row
