"""Finding and removing what a cluster's pod network left in the kernel, after any exit.

A pod network is named by its cluster id: namespaces ``<cluster id>-*`` (removing one
destroys its veths, its nft tables, its tc qdiscs and its iptables rules with it) and the
delay programs (their argv carries ``--cluster <cluster id>``). A namespace lives on while
a process is inside it, so its processes (found by ``/proc/*/ns/net`` inode) are killed
first. The harness never makes an nft table in the root namespace; :func:`leftover` lists
one named after the cluster anyway, and :func:`remove_cluster_network` removes it. The one
thing a pod network may add to the root namespace is its node host's veth
(:func:`node_link_name`, alias ``ha-bench-node <cluster id>``): it dies with the switch
namespace, and is listed and deleted here too should it outlive it.
"""

from __future__ import annotations

import hashlib
import subprocess

from harness.platform.local.net import ns, rules
from harness.platform.local.net.delay import MODULE as DELAY_MODULE

NODE_ALIAS = "ha-bench-node "  # the node host's root-namespace veth: "ha-bench-node <id>"


def node_link_name(cluster_id: str) -> str:
    """The node host's veth in the root namespace (15 characters at most: a hash)."""
    return "hb" + hashlib.sha1(cluster_id.encode()).hexdigest()[:12]


def node_links(cluster_id: str) -> list[str]:
    """Root-namespace links of the cluster's node host (by alias; normally one or none)."""
    try:
        with ns.route() as ip:
            return [link.get_attr("IFLA_IFNAME") for link in ip.get_links()
                    if link.get_attr("IFLA_IFALIAS") == f"{NODE_ALIAS}{cluster_id}"]  # fmt: skip
    except Exception:
        return []


def cluster_namespaces(cluster_id: str) -> list[str]:
    return [n for n in ns.names() if n.startswith(f"{cluster_id}-")]


def delay_programs(cluster_id: str) -> list[int]:
    """Live delay programs of the cluster, wherever they run."""
    pids = ns.pids_with_args("-m", DELAY_MODULE, "--cluster", cluster_id)
    return [p for p in pids if ns.running(p)]


def leftover(cluster_id: str) -> list[str]:
    """What of the cluster's network exists: ``netns NAME``, ``nft FAMILY TABLE`` (root
    namespace), ``link NAME`` (the node host's veth, root namespace) and ``delay program
    PID`` lines; empty after a clean-up."""
    left = [f"netns {n}" for n in cluster_namespaces(cluster_id)]
    left += [f"link {n}" for n in node_links(cluster_id)]
    left += [f"nft {t}" for t in rules.tables(None, rules.table_name(cluster_id))]
    left += [f"delay program {p}" for p in delay_programs(cluster_id)]
    return left


def remove_cluster_network(cluster_id: str) -> list[str]:
    """Remove the cluster's delay programs, every namespace ``<cluster id>-*`` (its
    processes SIGKILLed first), its node host's veth and any root-namespace nft table of
    the cluster; the
    problems, one line each. Never raises; nothing to do when nothing exists."""
    problems: list[str] = []
    try:
        alive = ns.kill_all(delay_programs(cluster_id))
        problems += [f"delay program {p} survived SIGKILL" for p in alive]
        for name in cluster_namespaces(cluster_id):
            alive = ns.kill_all(ns.pids_in(name))
            problems += [f"process {p} in {name} survived SIGKILL" for p in alive]
            try:
                ns.remove(name)
            except Exception as exc:
                problems.append(f"cannot remove network namespace {name}: {exc}")
        for link in node_links(cluster_id):  # normally gone with the switch namespace
            try:
                with ns.route() as ip:
                    ip.link("del", index=ip.link_lookup(ifname=link)[0])
            except Exception as exc:
                if link in node_links(cluster_id):
                    problems.append(f"cannot delete link {link}: {exc}")
        for table in rules.tables(None, rules.table_name(cluster_id)):
            done = subprocess.run(["nft", "delete", "table", *table.split()],
                                  capture_output=True, text=True, timeout=30)  # fmt: skip
            if done.returncode != 0:
                problems.append(f"cannot delete nft table {table}: {done.stderr.strip()}")
    except Exception as exc:  # the watchdog's last resort must go on with the rest
        problems.append(f"cluster network clean-up failed: {exc!r}")
    return problems
