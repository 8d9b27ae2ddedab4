"""A private L2 network per cluster: a switch namespace with a bridge, one namespace per host.

``<cluster id>-sw`` holds the bridge ``br0``; each host ``<cluster id>-<name>`` has ``lo``
up and ``eth0``, a veth whose peer (``p<n>``, its alias the host name) is a port of the
bridge. Addresses come from one /24 of 10.213.0.0/16 that no address or route of the root
namespace and no other named namespace overlaps (the chosen subnet is kept as the bridge's
alias, ``ha-bench 10.213.X.0/24``, so a concurrent cluster sees it). No default route,
IPv6 off in every namespace of the network (IPv4 only, so the IPv4 rules are the whole
story), and nothing added to the root namespace — unless a *node host* is added
(:meth:`PodNetwork.add_node_host`): the root namespace itself as a host of the network (the
harness's clients: readiness checks, prober, Locust, workload driver), through one veth
``hb<hash>`` (alias ``ha-bench-node <cluster id>``) with an address of the subnet. That adds
only the link and its connected /24 route to the root namespace: no default route into the
network, no forwarding, no rule; it goes with the switch namespace (a veth pair dies with
either end). Faults never change the root namespace, so those that would act in the node
host's namespace — latency or a bandwidth limit *from* it, a ``reject`` partition *to* it —
are refused; blackhole partitions and loss (on the switch) work both ways. Everything is
named by the cluster id, so :func:`remove_cluster_network` finds it after a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from harness.core.errors import HarnessError
from harness.core.polling import poll
from harness.platform.local.net import delay, ns, rules, shaping
from harness.platform.local.net.cleanup import (
    NODE_ALIAS,
    cluster_namespaces,
    node_link_name,
    remove_cluster_network,
)

POOL = ipaddress.ip_network("10.213.0.0/16")
ALIAS = "ha-bench "  # the bridge's alias: "ha-bench <subnet>"
BRIDGE = "br0"
SWITCH = "sw"
_LOCK = Path("/run/lock/ha-bench-net.lock")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
_FIX = "run the harness as root on Linux with ip(8) and nft(8): apt-get install iproute2 nftables"


def available() -> tuple[bool, str]:
    """Whether pod networks can be made here, and why not."""
    if sys.platform != "linux" or not Path("/proc/self/ns/net").exists():
        return False, "no network namespaces (not Linux)"
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    missing = [b for b in ("ip", "nft") if shutil.which(b) is None]
    if missing:
        return False, f"missing {', '.join(missing)}"
    return True, "root, network namespaces, ip and nft"


@dataclass(frozen=True)
class Host:
    """One host of a pod network: its own network namespace and address.

    To run a process in it, prefer ``subprocess.Popen([*host.exec_prefix, *argv])``:
    ``ip netns exec`` execs the command (the PID is the command's), is safe with threads,
    and gives it a private mount namespace with a ``/sys`` of this network namespace.
    (The local cluster's supervisor enters the namespace in ``preexec``'s exec wrapper
    instead, keeping the host's mount namespace.)
    """

    name: str
    netns: str | None  # None: the node host, the root namespace (see PodNetwork.add_node_host)
    address: str

    @property
    def node(self) -> bool:
        """The root namespace (the harness's own host), not a namespace of its own."""
        return self.netns is None

    @property
    def exec_prefix(self) -> list[str]:
        return ns.exec_prefix(self.netns) if self.netns is not None else []


@dataclass
class _Fault:
    detail: dict[str, Any]
    undo: list[Callable[[], str | None]] = field(default_factory=list)


def _used_networks() -> list[ipaddress.IPv4Network]:
    """IPv4 networks of the root namespace's addresses and routes and of every named
    namespace's addresses and pod-network subnets."""
    used: list[ipaddress.IPv4Network] = []

    def collect(ip: IPRoute, routes: bool) -> None:
        for msg in ip.get_addr(family=2):
            used.append(ipaddress.ip_network(
                f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}", strict=False))  # fmt: skip
        for link in ip.get_links():
            alias = link.get_attr("IFLA_IFALIAS") or ""
            if alias.startswith(ALIAS):
                with contextlib.suppress(ValueError):
                    used.append(ipaddress.ip_network(alias[len(ALIAS) :]))
        if routes:
            for msg in ip.get_routes(family=2):
                if msg["dst_len"] and msg.get_attr("RTA_DST"):
                    used.append(ipaddress.ip_network(
                        f"{msg.get_attr('RTA_DST')}/{msg['dst_len']}", strict=False))  # fmt: skip

    with ns.route() as ip:
        collect(ip, routes=True)
    for name in ns.names():
        with contextlib.suppress(Exception), ns.route(name) as ip:
            collect(ip, routes=False)
    return used


class PodNetwork:
    """A cluster's private network; see the module docstring. A context manager.

    Faults return a JSON-able dict (``id``, ``op``, the parameters, the mechanism and its
    rules) for the history; :meth:`heal` takes it (or its ``id``) back.
    """

    def __init__(self, cluster_id: str) -> None:
        ok, note = available()
        if not ok:
            raise HarnessError(f"a pod network cannot be made here: {note}", fix=_FIX)
        if not _ID.match(cluster_id):
            raise HarnessError(f"bad cluster id {cluster_id!r} for a pod network",
                               fix="letters, digits, '-' and '_' only, at most 48")  # fmt: skip
        stale = cluster_namespaces(cluster_id)
        if stale:  # a crashed run's (ids are unique per run): not ours to remove silently
            raise HarnessError(f"network namespaces of {cluster_id} exist: {stale}",
                               fix="remove_cluster_network(cluster_id) removes them")  # fmt: skip
        self.cluster_id = cluster_id
        self.switch = f"{cluster_id}-{SWITCH}"
        self.table = rules.table_name(cluster_id)
        self.hosts: dict[str, Host] = {}
        self._faults: dict[str, _Fault] = {}
        self._seq = 0
        self._closed = False
        _LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent cluster picks after we marked ours
            used = _used_networks()
            subnets = list(POOL.subnets(new_prefix=24))
            start = sum(cluster_id.encode()) % len(subnets)
            for i in range(len(subnets)):
                candidate = subnets[(start + i) % len(subnets)]
                if not any(candidate.overlaps(u) for u in used):
                    break
            else:
                raise HarnessError("no free /24 left in 10.213.0.0/16 for a pod network",
                                   fix="remove stale namespaces: ip netns list")  # fmt: skip
            self.subnet = candidate
            try:
                self._make_switch()
            except BaseException:
                self.close()
                raise

    # -- topology -----------------------------------------------------------------------
    def _namespace(self, name: str) -> None:
        if name in ns.names():
            fix = f"remove a crashed run's leftovers: ip netns del {name}"
            raise HarnessError(f"network namespace {name} already exists", fix=fix)
        ns.create(name)
        done = ns.run(name, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                             "net.ipv6.conf.default.disable_ipv6=1"])  # fmt: skip
        if done.returncode != 0:
            raise HarnessError(f"cannot turn IPv6 off in {name}: {done.stderr.strip()}",
                               fix="install procps (sysctl)")  # fmt: skip
        with ns.route(name) as ip:
            ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")

    def _make_switch(self) -> None:
        self._namespace(self.switch)
        with ns.route(self.switch) as ip:
            ip.link("add", ifname=BRIDGE, kind="bridge")
            index = ip.link_lookup(ifname=BRIDGE)[0]
            ip.link("set", index=index, ifalias=f"{ALIAS}{self.subnet}", state="up")

    def add_host(self, name: str) -> Host:
        """A new host ``name`` with the next address of the subnet, connected to the switch."""
        if not _NAME.match(name) or name == SWITCH:
            raise HarnessError(f"bad host name {name!r}",
                               fix="lowercase letters, digits and '-', not 'sw'")  # fmt: skip
        if name in self.hosts:
            raise HarnessError(f"host {name} already exists in {self.cluster_id}'s network")
        number = len(self.hosts) + 1
        if number > 253:
            raise HarnessError("a pod network has at most 253 hosts")
        host = Host(name, f"{self.cluster_id}-{name}", str(self.subnet[number]))
        self._namespace(host.netns)
        port = f"p{number}"
        # made from inside the new host, its peer moved to the (older) switch namespace:
        # made from the switch's side, naming the new host's namespace, it failed once in
        # three real bring-ups (FileNotFoundError for /var/run/netns/<host>, a file that
        # existed); this way nothing depends on a just-made namespace file being seen
        with ns.route(host.netns) as ip:
            ip.link("add", ifname="eth0", kind="veth",
                    peer={"ifname": port, "net_ns_fd": self.switch})  # fmt: skip
        with ns.route(self.switch) as ip:
            index = poll(lambda: (ip.link_lookup(ifname=port) or [None])[0], timeout_s=5,
                         interval_s=0.05)  # fmt: skip
            if index is None:
                raise HarnessError(f"the switch never saw {name}'s port {port}",
                                   fix=f"check `ip -n {self.switch} link`")  # fmt: skip
            ip.link("set", index=index, master=ip.link_lookup(ifname=BRIDGE)[0],
                    ifalias=name, state="up")  # fmt: skip
        with ns.route(host.netns) as ip:
            index = ip.link_lookup(ifname="eth0")[0]
            ip.addr("add", index=index, address=host.address, prefixlen=24)
            ip.link("set", index=index, state="up")
        self.hosts[name] = host
        return host

    def add_node_host(self, name: str = "client") -> Host:
        """The root namespace as host ``name`` (see the module docstring): one veth from it
        into the bridge with the next address of the subnet, IPv6 off on it."""
        if not _NAME.match(name) or name == SWITCH or name in self.hosts:
            raise HarnessError(f"bad or taken host name {name!r} for the node host")
        if any(h.node for h in self.hosts.values()):
            raise HarnessError(f"{self.cluster_id}'s network already has a node host")
        number = len(self.hosts) + 1
        if number > 253:
            raise HarnessError("a pod network has at most 253 hosts")
        host = Host(name, None, str(self.subnet[number]))
        link, port = node_link_name(self.cluster_id), f"p{number}"
        with ns.route() as ip:
            ip.link("add", ifname=link, kind="veth",
                    peer={"ifname": port, "net_ns_fd": self.switch})  # fmt: skip
            index = ip.link_lookup(ifname=link)[0]
            with contextlib.suppress(OSError):  # absent when the kernel has no IPv6
                Path(f"/proc/sys/net/ipv6/conf/{link}/disable_ipv6").write_text("1")
            ip.link("set", index=index, ifalias=f"{NODE_ALIAS}{self.cluster_id}")
            ip.addr("add", index=index, address=host.address, prefixlen=24)
            ip.link("set", index=index, state="up")
        with ns.route(self.switch) as ip:
            index = ip.link_lookup(ifname=port)[0]
            ip.link("set", index=index, master=ip.link_lookup(ifname=BRIDGE)[0],
                    ifalias=name, state="up")  # fmt: skip
        self.hosts[name] = host
        return host

    def _not_node(self, names: list[str], what: str) -> None:
        """Refuse a fault that would change the node host's (the root) namespace."""
        node = [n for n in names if n in self.hosts and self.hosts[n].node]
        if node:
            raise HarnessError(
                f"{what} would change {node[0]}'s namespace, the root namespace of the "
                "harness itself, which the pod network never changes",
                fix=f"choose the other direction (both_ways: false, with {node[0]} as a peer "
                "of a replica) or a blackhole partition / loss, which act on the switch",
            )

    def _addresses(self, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in self.hosts]
        if unknown or not names:
            raise HarnessError(f"unknown hosts {unknown or names} in {self.cluster_id}'s "
                               f"network (hosts: {sorted(self.hosts)})")  # fmt: skip
        return [self.hosts[n].address for n in names]

    def _add(self, op: str, detail: dict[str, Any]) -> tuple[str, _Fault]:
        self._seq += 1
        fault_id = f"f{self._seq}"
        fault = _Fault({"id": fault_id, "op": op, **detail})
        self._faults[fault_id] = fault
        return fault_id, fault

    def _apply(self, fault_id: str, fault: _Fault, work: Callable[[], None]) -> dict[str, Any]:
        try:
            work()
        except BaseException:
            self.heal(fault_id)
            raise
        return dict(fault.detail)

    def _bridge_drop(self, fault: _Fault, chain: str, pairs: list, percent: float | None) -> None:
        ruleset = rules.drop_chain(self.table, chain, pairs, percent)
        fault.undo.append(lambda: rules.delete_chain(self.switch, "bridge", self.table, chain))
        rules.load(self.switch, ruleset)
        fault.detail["rules"].append({"netns": self.switch, "nft": ruleset})

    # -- faults -------------------------------------------------------------------------
    def partition(self, a: list[str], b: list[str], *, both_ways: bool = True,
                  mode: str = "blackhole") -> dict[str, Any]:  # fmt: skip
        """Traffic from hosts ``a`` to hosts ``b`` (and back, ``both_ways``) cut: dropped on
        the switch (``blackhole``: connects time out) or rejected by the destination host
        (``reject``: TCP reset, ICMP host-unreachable: connects fail fast)."""
        if mode not in ("blackhole", "reject"):
            raise HarnessError(f"unknown partition mode {mode!r}", fix="blackhole or reject")
        addr_a, addr_b = self._addresses(a), self._addresses(b)
        if mode == "reject":
            self._not_node(b + (a if both_ways else []), "a reject partition to it")
        where = "switch bridge forward" if mode == "blackhole" else "destination inet input"
        detail = {"a": a, "b": b, "both_ways": both_ways, "mode": mode, "where": where}
        fault_id, fault = self._add("partition", {**detail, "rules": []})
        pairs = [(addr_a, addr_b)] + ([(addr_b, addr_a)] if both_ways else [])

        def work() -> None:
            if mode == "blackhole":
                self._bridge_drop(fault, fault_id, pairs, None)
                return
            directed = [(a, addr_a, b)] + ([(b, addr_b, a)] if both_ways else [])
            for _src_names, src_addrs, dst_names in directed:
                for dst in dst_names:
                    target = self.hosts[dst].netns
                    ruleset = rules.reject_chain(self.table, fault_id, src_addrs)
                    fault.undo.append(lambda t=target: rules.delete_chain(
                        t, "inet", self.table, fault_id))  # fmt: skip
                    rules.load(target, ruleset)
                    fault.detail["rules"].append({"netns": target, "nft": ruleset})

        return self._apply(fault_id, fault, work)

    def loss(self, a: list[str], b: list[str], percent: float, *,
             both_ways: bool = False) -> dict[str, Any]:  # fmt: skip
        """A random ``percent`` of the IPv4 packets from ``a`` to ``b`` dropped on the switch
        (the forwarding path: senders see no error). Measured: 30 % → 69-71 % delivered."""
        if not 0 <= percent <= 100:
            raise HarnessError(f"loss percent {percent} is not within 0..100")
        addr_a, addr_b = self._addresses(a), self._addresses(b)
        fault_id, fault = self._add("loss", {"a": a, "b": b, "percent": percent,
                                             "both_ways": both_ways, "rules": []})  # fmt: skip
        pairs = [(addr_a, addr_b)] + ([(addr_b, addr_a)] if both_ways else [])
        return self._apply(fault_id, fault,
                           lambda: self._bridge_drop(fault, fault_id, pairs, percent))  # fmt: skip

    def latency(self, a: list[str], b: list[str], delay_ms: float, jitter_ms: float = 0.0, *,
                both_ways: bool = False) -> dict[str, Any]:  # fmt: skip
        """Packets from ``a`` to ``b`` held ``delay_ms`` ± ``jitter_ms`` before they leave
        (one way: an a→b round trip grows by ``delay_ms`` once). Where the kernel has netem
        (detected, :func:`.shaping.netem_available`), a netem qdisc on each source host's
        eth0 (:func:`.shaping.delay`); else an NFQUEUE rule and a delay program per source
        host (:mod:`.delay`; the reference kernel has no netem). ``mechanism`` says which."""
        if delay_ms < 0 or not 0 <= jitter_ms <= delay_ms:
            raise HarnessError(f"bad latency {delay_ms} ± {jitter_ms} ms",
                               fix="0 <= jitter_ms <= delay_ms")  # fmt: skip
        addr_a, addr_b = self._addresses(a), self._addresses(b)
        self._not_node(a + (b if both_ways else []), "latency from it")
        directed = [(a, addr_b)] + ([(b, addr_a)] if both_ways else [])
        if shaping.netem_available(self.switch):
            return self._netem_latency(a, b, directed, delay_ms, jitter_ms, both_ways)
        binary = delay.iptables()
        detail = {"a": a, "b": b, "delay_ms": delay_ms, "jitter_ms": jitter_ms,
                  "both_ways": both_ways, "mechanism": f"{binary} NFQUEUE",
                  "netem": False}  # fmt: skip
        fault_id, fault = self._add("latency", {**detail, "rules": []})
        queue = int(fault_id[1:])  # queue numbers are per namespace: one per fault suffices
        comment = f"{self.table}:{fault_id}"

        def work() -> None:
            for src_names, dst_addrs in directed:
                for src in src_names:
                    host = self.hosts[src]
                    program = delay.start(host.exec_prefix, self.cluster_id, queue, delay_ms,
                                          jitter_ms)  # fmt: skip
                    fault.undo.append(lambda p=program: delay.stop(p))
                    # undone before the program: then it can release what it holds
                    undo = delay.rule(binary, "-D", dst_addrs, queue, comment)
                    fault.undo.append(lambda n=host.netns, u=undo: _run_undo(n, u))
                    add = delay.rule(binary, "-A", dst_addrs, queue, comment)
                    done = ns.run(host.netns, add)
                    if done.returncode != 0:
                        raise HarnessError(f"{binary} in {host.netns}: {done.stderr.strip()}",
                                           fix="apt-get install iptables")  # fmt: skip
                    fault.detail["rules"].append({"netns": host.netns, "iptables": add[1:],
                                                  "delay_pid": program.pid})  # fmt: skip

        return self._apply(fault_id, fault, work)

    def _netem_latency(self, a: list[str], b: list[str],
                       directed: list[tuple[list[str], list[str]]], delay_ms: float,
                       jitter_ms: float, both_ways: bool,
                       leaf: str = "netem") -> dict[str, Any]:  # fmt: skip
        """:meth:`latency` by a netem qdisc per source host (``leaf``: a stand-in qdisc
        kind, for testing the tree where the kernel has no netem)."""
        sources = [n for names, _ in directed for n in names]
        self._tc_free(sources)
        fault_id, fault = self._add("latency", {
            "a": a, "b": b, "delay_ms": delay_ms, "jitter_ms": jitter_ms, "both_ways": both_ways,
            "mechanism": "netem" if leaf == "netem" else f"tc {leaf} (stand-in for netem)",
            "netem": leaf == "netem", "tc_hosts": sources, "rules": []})  # fmt: skip

        def work() -> None:
            for src_names, dst_addrs in directed:
                for src in src_names:
                    target = self.hosts[src].netns
                    fault.undo.append(lambda t=target: shaping.clear(t))
                    shaping.delay(target, dst_addrs, delay_ms, jitter_ms, leaf=leaf)
                    fault.detail["rules"].append({"netns": target, "dev": "eth0", "to": dst_addrs,
                                                  "qdisc": leaf})  # fmt: skip

        return self._apply(fault_id, fault, work)

    def _tc_free(self, hosts: list[str]) -> None:
        """Refuse a second tc tree (bandwidth or netem delay) on a host's eth0."""
        busy = [n for f in self._faults.values() for n in f.detail.get("tc_hosts", [])
                if n in hosts]  # fmt: skip
        if busy:
            raise HarnessError(f"hosts {busy} already have a bandwidth limit or netem delay",
                               fix="heal it first")  # fmt: skip

    def bandwidth(self, a: list[str], b: list[str] | None, rate_kbit: int) -> dict[str, Any]:
        """What each host of ``a`` sends (to hosts ``b``, or to anyone) limited to
        ``rate_kbit`` (shared by its destinations), by HTB on its ``eth0`` (:mod:`.shaping`).
        One bandwidth fault per source host at a time. Measured: 8 Mbit → 1 MiB in 1.08 s."""
        if rate_kbit <= 0:
            raise HarnessError(f"bad rate {rate_kbit} kbit/s")
        self._addresses(a)
        self._not_node(a, "a bandwidth limit on it")
        addr_b = self._addresses(b) if b is not None else None
        self._tc_free(a)
        fault_id, fault = self._add("bandwidth", {"a": a, "b": b, "rate_kbit": rate_kbit,
                                                  "mechanism": "htb", "tc_hosts": list(a),
                                                  "rules": []})  # fmt: skip

        def work() -> None:
            for src in a:
                target = self.hosts[src].netns
                fault.undo.append(lambda t=target: shaping.clear(t))
                shaping.limit(target, rate_kbit, addr_b)
                fault.detail["rules"].append({"netns": target, "dev": "eth0",
                                              "htb_kbit": rate_kbit, "to": addr_b})  # fmt: skip

        return self._apply(fault_id, fault, work)

    def heal(self, handle: dict[str, Any] | str) -> list[str]:
        """Undo one fault (its dict or id; unknown or healed: nothing); the problems."""
        fault_id = handle["id"] if isinstance(handle, dict) else handle
        fault = self._faults.pop(fault_id, None)
        problems = []
        for undo in reversed(fault.undo if fault else []):
            try:
                problem = undo()
            except Exception as exc:  # an undo must not stop the others
                problem = f"{fault_id}: {exc}"
            if problem:
                problems.append(problem)
        return problems

    def heal_all(self) -> list[str]:
        """Undo every active fault, newest first; the problems."""
        return [p for fault_id in reversed(list(self._faults)) for p in self.heal(fault_id)]

    @property
    def faults(self) -> list[dict[str, Any]]:
        return [dict(f.detail) for f in self._faults.values()]

    def close(self) -> list[str]:
        """Heal everything and remove every namespace of the network (idempotent)."""
        problems = self.heal_all()
        if not self._closed:
            self._closed = True
            problems += remove_cluster_network(self.cluster_id)
        return problems

    def __enter__(self) -> PodNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_undo(netns: str, argv: list[str]) -> str | None:
    if netns not in ns.names():
        return None
    done = ns.run(netns, argv)
    return None if done.returncode == 0 else f"{' '.join(argv)} in {netns}: {done.stderr}"
