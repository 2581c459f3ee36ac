"""Who the client is behind trusted proxies: the address an ``X-Forwarded-For`` hop names, normalised.

Werkzeug's ProxyFix copies the header's value as it stands. A proxy that appends ``ip:port``, an IPv4
address written as IPv6 (``::ffff:1.2.3.4``) or a forged non-address would each count as a new client for
the limiter and the monitor, and land in the audit log as written. Only a valid address is taken; anything
else falls back to the socket peer, the one value a client cannot choose.
"""

from __future__ import annotations

import ipaddress

from werkzeug.middleware.proxy_fix import ProxyFix


def normalise(value: str | None) -> str | None:
    """The address in ``value`` (port and brackets removed, IPv4-mapped IPv6 as IPv4), or None."""
    text = (value or "").strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def trust_proxies(wsgi_app, hops: int):
    """ProxyFix for ``hops`` trusted proxies, then the address it took checked and normalised."""
    def normalised(environ, start_response):
        peer = environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR")
        environ["REMOTE_ADDR"] = normalise(environ.get("REMOTE_ADDR")) or peer
        return wsgi_app(environ, start_response)

    return ProxyFix(normalised, x_for=hops)
