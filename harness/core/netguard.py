"""The one guard that keeps probes, load and workload on the harness's own hosts.

Allowed: loopback addresses, and the addresses a local cluster registered as its own
(:func:`register_hosts`: the hosts of its pod network, each replica's address on the
cluster's private bridge). Anything else is refused.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

from harness.core.errors import HarnessError

_OWN: dict[str, frozenset[str]] = {}  # owner (a cluster id) -> its hosts' addresses
_LOCK = threading.Lock()


def register_hosts(owner: str, addresses: Iterable[str]) -> None:
    """Addresses (IPv4/IPv6 literals) of hosts ``owner`` made, allowed until unregistered."""
    normal = frozenset(str(ipaddress.ip_address(a)) for a in addresses)
    with _LOCK:
        _OWN[owner] = normal


def unregister_hosts(owner: str) -> None:
    with _LOCK:
        _OWN.pop(owner, None)


def own_hosts() -> list[str]:
    """Every registered address (to hand to a child process that guards itself)."""
    with _LOCK:
        return sorted({a for addresses in _OWN.values() for a in addresses})


def is_own_host(host: str) -> bool:
    """True if ``host`` is an address literal some cluster registered as its own host."""
    try:
        address = str(ipaddress.ip_address(host.strip().strip("[]")))
    except ValueError:
        return False
    with _LOCK:
        return any(address in addresses for addresses in _OWN.values())


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
    """Return ``url`` without a trailing slash, or raise HarnessError if its host is neither
    loopback nor one of a cluster's own hosts (:func:`register_hosts`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HarnessError(
            f"target URL {url!r} is not an http(s) URL with a host",
            "pass e.g. http://127.0.0.1:8080",
        )
    if not (is_loopback_host(parts.hostname) or is_own_host(parts.hostname)):
        raise HarnessError(
            f"refusing to send traffic to non-loopback host {parts.hostname!r} "
            "(not a host of the harness's own cluster either)",
            "target a local cluster on 127.0.0.1/localhost or its pod network "
            "(port-forward remote ones)",
        )
    return url.rstrip("/")
