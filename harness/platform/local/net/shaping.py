"""Traffic control on a host's ``eth0`` through pyroute2: bandwidth limits, and netem
delay where the kernel has netem.

A limit is an HTB root qdisc ``1:`` with an unlimited class ``1:10`` and a limited class
``1:20``; a u32 filter per destination (IPv4 daddr at offset 16) sends its traffic to the
limited class, or, without destinations, the limited class is the default. Measured on
the reference machine: 8 Mbit → 1 MiB in 1.08 s (1.05 s ideal); a TBF with a 100 ms queue
dropped 815 packets and took 1.42 s, so HTB it is.

A netem delay (:func:`delay`) is the same tree with an unlimited class ``1:20`` whose leaf
qdisc ``20:`` is netem (delay, jitter); the filters send the destinations' traffic to it.
:func:`netem_available` says whether the kernel has netem (the reference kernel has not:
latency there goes through NFQUEUE, :mod:`.delay`); the tree itself is tested with another
leaf (``pfifo``), the netem leaf only where the kernel has it.
"""

from __future__ import annotations

import contextlib
import ipaddress

from harness.platform.local.net import ns

_LIMITED, _FREE = 0x20, 0x10
_netem: bool | None = None


def limit(netns: str, rate_kbit: int, destinations: list[str] | None) -> None:
    """Limit what ``netns``'s eth0 sends (to ``destinations``, or everything)."""
    _tree(netns, f"{rate_kbit}kbit", destinations, leaf=None)


def delay(netns: str, destinations: list[str], delay_ms: float, jitter_ms: float = 0.0,
          leaf: str = "netem") -> None:  # fmt: skip
    """Hold what ``netns``'s eth0 sends to ``destinations`` ``delay_ms`` ± ``jitter_ms`` by
    netem (``leaf``: another qdisc kind in its place, for testing the tree)."""
    _tree(netns, "10gbit", destinations,
          leaf=(leaf, {"delay": int(delay_ms * 1000), "jitter": int(jitter_ms * 1000)}
                if leaf == "netem" else {"limit": 1000}))  # fmt: skip


def _tree(netns: str, rate: str, destinations: list[str] | None,
          leaf: tuple[str, dict] | None) -> None:  # fmt: skip
    with ns.route(netns) as ip:
        index = ip.link_lookup(ifname="eth0")[0]
        ip.tc("add", "htb", index=index, handle="1:",
              default=_FREE if destinations is not None else _LIMITED)  # fmt: skip
        ip.tc("add-class", "htb", index=index, handle=f"1:{_FREE:x}", parent="1:",
              rate="10gbit", ceil="10gbit")  # fmt: skip
        ip.tc("add-class", "htb", index=index, handle=f"1:{_LIMITED:x}", parent="1:",
              rate=rate, ceil=rate)  # fmt: skip
        if leaf is not None:
            kind, options = leaf
            ip.tc("add", kind, index=index, parent=f"1:{_LIMITED:x}",
                  handle=f"{_LIMITED:x}:", **options)  # fmt: skip
        for address in destinations or []:
            key = f"0x{int(ipaddress.ip_address(address)):08x}/0xffffffff+16"
            ip.tc("add-filter", "u32", index=index, parent="1:0", prio=10, protocol=0x0800,
                  target=f"1:{_LIMITED:x}", keys=[key])  # fmt: skip


def leaf_packets(netns: str) -> int:
    """Packets the leaf qdisc ``20:`` of a :func:`delay` tree has passed on."""
    with ns.route(netns) as ip:
        index = ip.link_lookup(ifname="eth0")[0]
        for q in ip.get_qdiscs(index=index):
            if q["handle"] == _LIMITED << 16:
                stats = q.get_attr("TCA_STATS2")
                basic = stats.get_attr("TCA_STATS_BASIC") if stats else None
                return int(basic["packets"]) if basic else int(q.get_attr("TCA_STATS")["packets"])
    raise LookupError(f"no delay tree on eth0 in {netns}")


def clear(netns: str) -> str | None:
    """Remove the limit or delay tree; the problem, or None (a namespace already gone is
    none)."""
    if netns not in ns.names():
        return None
    try:
        with ns.route(netns) as ip:
            ip.tc("del", "htb", index=ip.link_lookup(ifname="eth0")[0], handle="1:")
    except Exception as exc:
        return f"cannot remove the bandwidth limit in {netns}: {exc}"
    return None


def netem_available(netns: str) -> bool:
    """Whether the kernel has the netem qdisc: tried once on ``netns``'s ``lo``, cached.
    The reference kernel has none ("Specified qdisc kind is unknown")."""
    global _netem
    if _netem is None:
        try:
            with ns.route(netns) as ip:
                index = ip.link_lookup(ifname="lo")[0]
                ip.tc("add", "netem", index=index, handle="1:", delay=1000)
                with contextlib.suppress(Exception):
                    ip.tc("del", "netem", index=index, handle="1:")
            _netem = True
        except Exception:
            _netem = False
    return _netem
