"""A pod network for the local platform: hosts with their own address, and network faults.

:class:`PodNetwork` gives a cluster a private L2 network of network namespaces (a switch
with a bridge, one namespace per host, addresses from 10.213.0.0/16, nothing routed out;
the root namespace untouched but for an optional *node host*, one veth that makes the
harness itself a host of the network) and injects network faults between its hosts —
partition (blackhole or reject, both ways or one), random loss, latency with jitter, a
bandwidth limit — each returning a JSON-able description and undone by ``heal``. Everything
is kernel state named by the cluster id: :func:`remove_cluster_network` removes it after a
crash (the watchdog calls it) and :func:`leftover` lists what remains. The local cluster
uses it with the topology's ``network: pod``.

Modules: :mod:`.pods` (the network and its faults), :mod:`.rules` (nftables),
:mod:`.delay` (the NFQUEUE delay program), :mod:`.shaping` (tc), :mod:`.cleanup` (after a
crash), :mod:`.ns` (namespace helpers).
"""

from harness.platform.local.net.cleanup import leftover, remove_cluster_network
from harness.platform.local.net.pods import Host, PodNetwork, available

__all__ = ["Host", "PodNetwork", "available", "leftover", "remove_cluster_network"]
