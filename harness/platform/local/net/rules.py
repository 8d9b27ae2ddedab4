"""nftables rules of the pod network's faults: one table per cluster, one chain per fault.

Every rule goes into the table ``ha_bench_<cluster id>`` (``-`` → ``_``) of the namespace it
acts in; each fault is its own base chain ``f<n>`` (several base chains may share a hook),
so undoing a fault deletes its chain and touches nothing else. Rules are written as an nft
ruleset and loaded with ``nft -f -`` inside the namespace: one atomic transaction.

Measured on the reference machine (kernel 6.18, no loadable modules): the ``bridge``
family filters the forwarding path (drop, ``numgen random``) but has **no ``reject``**
(``Could not process rule: No such file or directory``), so rejects go into the
*destination* host's ``inet`` input chain: the packet crosses the switch, the destination's
kernel answers with a TCP reset or ICMP host-unreachable (connect fails in ~1 ms with
ECONNREFUSED). In the source's output chain a reject would make UDP senders get EPERM.
"""

from __future__ import annotations

import subprocess

from harness.core.errors import HarnessError
from harness.platform.local.net import ns


def table_name(cluster_id: str) -> str:
    return "ha_bench_" + cluster_id.replace("-", "_")


def _set(addresses: list[str]) -> str:
    return "{ " + ", ".join(addresses) + " }"


def drop_chain(table: str, chain: str, pairs: list[tuple[list[str], list[str]]],
               percent: float | None = None) -> str:  # fmt: skip
    """Bridge-family ruleset: IPv4 from each pair's sources to its destinations dropped
    (all of it, or a random ``percent``) on the switch's forwarding path."""
    rules = []
    for src, dst in pairs:
        match = f"ether type ip ip saddr {_set(src)} ip daddr {_set(dst)}"
        if percent is not None and percent < 100:  # 100 %: all (nft refuses "< 10000")
            match += f" numgen random mod 10000 < {round(percent * 100)}"
        rules.append(f"    {match} drop")
    return (f"table bridge {table} {{\n  chain {chain} {{\n"
            f"    type filter hook forward priority 0; policy accept;\n"
            + "\n".join(rules) + "\n  }\n}\n")  # fmt: skip


def reject_chain(table: str, chain: str, sources: list[str]) -> str:
    """inet-family ruleset for a destination host: IPv4 from ``sources`` rejected on input
    (TCP with a reset, the rest with ICMP host-unreachable) — except resets and ICMP errors,
    which are the other side's rejects (both ways, they would otherwise be dropped)."""
    src = _set(sources)
    return (f"table inet {table} {{\n  chain {chain} {{\n"
            f"    type filter hook input priority 0; policy accept;\n"
            f"    ip saddr {src} tcp flags & rst == rst return\n"
            f"    ip saddr {src} icmp type destination-unreachable return\n"
            f"    ip saddr {src} meta l4proto tcp reject with tcp reset\n"
            f"    ip saddr {src} reject with icmpx type host-unreachable\n"
            "  }\n}\n")  # fmt: skip


def load(netns: str, ruleset: str) -> None:
    """Load ``ruleset`` in ``netns`` (one transaction), or a HarnessError with nft's words."""
    done = ns.run(netns, ["nft", "-f", "-"], stdin=ruleset)
    if done.returncode != 0:
        raise HarnessError(f"nft in {netns} refused the rules: {done.stderr.strip()}",
                           fix="install nftables (apt-get install nftables)")  # fmt: skip


def delete_chain(netns: str, family: str, table: str, chain: str) -> str | None:
    """Remove a fault's chain; the problem, or None (a namespace already gone is none)."""
    if netns not in ns.names():
        return None
    done = ns.run(netns, ["nft", "-f", "-"],
                  stdin=f"flush chain {family} {table} {chain}\n"
                        f"delete chain {family} {table} {chain}\n")  # fmt: skip
    if done.returncode != 0 and "No such file or directory" not in done.stderr:
        return f"cannot delete nft chain {family} {table} {chain} in {netns}: {done.stderr}"
    return None


def tables(netns: str | None, name: str) -> list[str]:
    """``family name`` of each table called ``name`` in ``netns`` (None: this namespace)."""
    argv = ["nft", "list", "tables"]
    try:
        done = (ns.run(netns, argv) if netns
                else subprocess.run(argv, capture_output=True, text=True, timeout=30))  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table" and parts[2] == name:
            found.append(f"{parts[1]} {name}")
    return found
