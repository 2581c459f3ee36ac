"""Rate limiting, checked before authentication: one budget per client address for every request, and
one per API key for requests that carry a valid key.

The address budget runs first so that a caller without a valid key is limited too: otherwise a key can
be guessed at full speed and every 401 grows the audit log without bound. Counting both budgets means
neither rotating keys from one address nor sharing one key across many addresses escapes the limit. Both
are checked in one storage call (``ratelimit_store``): at most one Redis round trip per request, and for a
client sending fast, one per batch of leased slots.

The client address is the socket peer unless a trusted proxy count is configured (werkzeug's ProxyFix
then reads that many ``X-Forwarded-For`` hops), so a client cannot reset its budget by inventing a header.
When the shared counts cannot be read the service refuses (503), it never answers unlimited.
"""

from __future__ import annotations

import functools
import ipaddress
import math

from flask import Flask

from fraudpipe.serving.auth import presented_key
from fraudpipe.serving.errors import ApiError
from fraudpipe.serving.ratelimit_store import Rate, StoreUnavailable, open_store

UNAVAILABLE_RETRY_SECONDS = 1


def budget_address(address: str) -> str:
    """IPv6 clients are counted per /64: one host is routinely handed a whole /64, and counting each
    address would give it 2^64 budgets to guess keys with (and the monitor 2^64 fresh histories)."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


@functools.lru_cache(maxsize=4096)
def budget_names(address: str, key_id: str | None) -> tuple[str, ...]:
    """The address's budget and the key's, named once per address and key (every request asks)."""
    return (f"addr:{budget_address(address)}", *((f"key:{key_id}",) if key_id is not None else ()))


def retry_after(seconds: float) -> str:
    """Whole seconds (what the header allows), rounded up so a client that waits is let in."""
    return str(max(1, math.ceil(seconds)))


def install(app: Flask, service) -> None:
    """Installed before ``auth``: the key is identified here (the same hashed, constant-time lookup) so
    that both budgets go to storage in one call, before auth refuses anything."""
    settings = service.settings
    host = service.host_monitor
    store = service.rate_store = open_store(settings.rate_limit_storage, Rate.parse(settings.rate_limit),
                                            host_id=host.host_id if host is not None else None)
    keys = service.keys if "auth" in service.controls else None
    service.readiness_checks.append(store.ready)

    def identities(asked, context) -> tuple[str, ...]:
        key_id = None
        if keys is not None and asked.endpoint == "predict":
            key_id = keys.identify(presented_key(asked))
            if key_id is not None:
                context.key_id = key_id  # a refused request's record still says whose key it carried
        return budget_names(asked.remote_addr or "unknown", key_id)

    def enforce_limits(asked, context) -> None:
        try:
            wait = store.acquire(identities(asked, context))
        except StoreUnavailable as exc:
            raise ApiError(503, "rate_limit_unavailable", f"{exc}; try again shortly",
                           headers={"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)}) from None
        if wait > 0:
            raise ApiError(429, "too_many_requests", f"rate limit of {settings.rate_limit} exceeded",
                           headers={"Retry-After": retry_after(wait)})

    service.checks.append(enforce_limits)
