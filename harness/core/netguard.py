"""The one guard that keeps probes, load and workload on loopback addresses."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from harness.core.errors import HarnessError


def is_loopback_host(host: str, *, resolve: bool = False) -> bool:
    """True if ``host`` is localhost, in 127.0.0.0/8 or ::1 (IPv4-mapped included).

    Other names are loopback only with ``resolve=True`` and only if every address they
    resolve to is; without it they are refused.
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    else:
        mapped = getattr(ip, "ipv4_mapped", None)
        return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))
    if not resolve:
        return False
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise HarnessError(
            f"cannot resolve host {host!r}: {exc}", fix="check the host name"
        ) from exc
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(is_loopback_host(a) for a in addresses)


def require_loopback(url: str) -> str:
    """Return ``url`` without a trailing slash, or raise HarnessError if it is not loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HarnessError(
            f"target URL {url!r} is not an http(s) URL with a host",
            "pass e.g. http://127.0.0.1:8080",
        )
    if not is_loopback_host(parts.hostname):
        raise HarnessError(
            f"refusing to send traffic to non-loopback host {parts.hostname!r}",
            "target a local cluster on 127.0.0.1/localhost (port-forward remote ones)",
        )
    return url.rstrip("/")
