"""Network faults on Kubernetes: partitions through NetworkPolicy objects the harness owns,
latency, loss and bandwidth through Chaos Mesh NetworkChaos.

- ``partition`` (blackhole) — the replicas of side ``a`` are labelled ``ha-bench/cut-<n>:
  a``, those of side ``b`` ``...: b``; one NetworkPolicy selects side ``a`` and allows its
  traffic to and from everything *except* side ``b``: pods of the namespace whose label is
  not ``b`` (``NotIn`` also matches pods without the label), every other namespace, and
  all addresses (``0.0.0.0/0``, ``::/0``) except side ``b``'s pod IPs (a CNI that matches
  pod IPs against ``ipBlock`` would otherwise let them back in). Both ways: ingress and
  egress; one way (``a`` to ``b`` only): egress only — replies to connections ``b`` opens
  still pass, as NetworkPolicy is stateful. NetworkPolicy only ever allows: ``reject`` (a
  fast failure) cannot be expressed, so it is refused with one line. It is enforced only
  where the CNI implements NetworkPolicy: Calico, Cilium, Antrea, and kind's kindnet since
  kind v0.24.0 (kube-network-policies); Flannel alone ignores it — the partition then does
  nothing, and the repetition's fault confirmation (the target seen failing) says so.
- ``latency`` / ``loss`` / ``bandwidth`` — a Chaos Mesh **NetworkChaos** (``delay``,
  ``loss``, ``bandwidth`` actions, tc netem/tbf inside the pod's network namespace, done by
  chaos-daemon) from side ``a`` to side ``b`` (``direction: to``, or ``both``); without
  Chaos Mesh's CRD, one line naming the fix.

Every object lives in the harness's namespace with its labels and is deleted by
:meth:`NetworkFaults.clear`, which also removes the side labels; a NetworkChaos also has a
``duration`` (hold plus a margin), so Chaos Mesh ends it if the harness dies. A
NetworkPolicy has none: the undo (in the injector's ``finally``) deletes it, and the deletion
of a namespace the harness owns removes one a killed harness left.
Nothing here talks to the API server: the caller passes a :class:`NetworkApi`. Tested
offline against the real schemas (kubernetes-validate for NetworkPolicy, the vendored
NetworkChaos CRD for Chaos Mesh).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from harness.core.errors import HarnessError
from harness.platform.kubernetes.chaosmesh import (
    API_VERSION,
    HOLD_MARGIN_S,
    INSTALL_FIX,
    chaos_name,
    go_duration,
    require_in_scope,
)

NETWORK_CHAOS_CRD = "networkchaos.chaos-mesh.org"
CUT_LABEL = "ha-bench/cut-{n}"
MODES = ("blackhole", "reject")
_ids = itertools.count(1)


class NetworkApi(Protocol):
    """What :class:`NetworkFaults` needs of the API adapter."""

    def crd_installed(self, name: str) -> bool: ...

    def create(self, obj: dict[str, Any]) -> None: ...

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete one namespaced object (gone already: no error)."""
        ...

    def label_pod(self, namespace: str, name: str, labels: Mapping[str, str | None]) -> None:
        """Merge-patch the pod's labels (None removes one; a pod that is gone: no error)."""
        ...


def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return pod.get("metadata") or {}


def _name(pod: Mapping[str, Any]) -> str:
    return str(_meta(pod)["name"])


def _pod_ips(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    """The addresses of ``pods`` (``status.podIPs``, else ``status.podIP``), both families."""
    out = []
    for pod in pods:
        status = pod.get("status") or {}
        ips = [p.get("ip") for p in status.get("podIPs") or []] or [status.get("podIP")]
        out += [ip for ip in ips if ip]
    return sorted(set(out))


def _everything_but(ips: Sequence[str]) -> list[dict[str, Any]]:
    """``ipBlock`` peers for all of IPv4 and IPv6 except ``ips``."""
    out = []
    for cidr, host, family in (("0.0.0.0/0", 32, "."), ("::/0", 128, ":")):
        block: dict[str, Any] = {"cidr": cidr}
        excluded = [f"{ip}/{host}" for ip in ips if family in ip]
        if excluded:
            block["except"] = excluded
        out.append({"ipBlock": block})
    return out


def partition_policy(
    key: str,
    *,
    namespace: str,
    labels: Mapping[str, str],
    b_ips: Sequence[str],
    both_ways: bool = True,
    name: str | None = None,
) -> dict[str, Any]:
    """The NetworkPolicy that cuts pods labelled ``key: a`` from pods labelled ``key: b``
    (egress, and ingress when ``both_ways``); everything else stays allowed."""
    not_b = {"matchExpressions": [{"key": key, "operator": "NotIn", "values": ["b"]}]}
    other_namespaces = {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [namespace]}
    ]}  # fmt: skip
    peers = [{"podSelector": not_b}, {"namespaceSelector": other_namespaces},
             *_everything_but(b_ips)]  # fmt: skip
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": {key: "a"}},
        "policyTypes": ["Egress", "Ingress"] if both_ways else ["Egress"],
        "egress": [{"to": peers}],
    }
    if both_ways:
        spec["ingress"] = [{"from": peers}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name or f"hab-partition-{key.rsplit('-', 1)[-1]}",
            "namespace": namespace,
            "labels": {**labels, "ha-bench/fault": "true"},
        },
        "spec": spec,
    }


def network_chaos(
    action: str,
    pods_a: Sequence[Mapping[str, Any]],
    pods_b: Sequence[Mapping[str, Any]],
    settings: dict[str, Any],
    *,
    namespace: str,
    labels: Mapping[str, str],
    duration_s: float,
    both_ways: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """A NetworkChaos ``action`` (``delay``, ``loss``, ``bandwidth``) on the pods of side
    ``a`` for traffic to side ``b`` (``both``: either way); ``settings`` is the action's
    block (``{"latency": "100ms"}``, ...)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "NetworkChaos",
        "metadata": {
            "name": name or chaos_name(f"net-{action}", _name(pods_a[0])),
            "namespace": namespace,
            "labels": {**labels, "ha-bench/fault": "true"},
        },
        "spec": {
            "action": action,
            "mode": "all",
            "selector": {"pods": {namespace: [_name(p) for p in pods_a]}},
            "direction": "both" if both_ways else "to",
            "target": {"mode": "all",
                       "selector": {"pods": {namespace: [_name(p) for p in pods_b]}}},
            action: settings,
            "duration": go_duration(duration_s),
        },
    }  # fmt: skip


def delay_settings(delay_ms: float, jitter_ms: float = 0.0) -> dict[str, Any]:
    out = {"latency": f"{delay_ms:g}ms"}
    if jitter_ms:
        out["jitter"] = f"{jitter_ms:g}ms"
    return out


def loss_settings(percent: float) -> dict[str, Any]:
    if not 0 < percent <= 100:
        raise HarnessError(f"loss of {percent:g} %", fix="give 0 < percent <= 100")
    return {"loss": f"{percent:g}"}


def bandwidth_settings(rate_kbit: float) -> dict[str, Any]:
    """tbf: ``rate`` in kbit/s, a 20 MiB queue limit and a 10 kB bucket (Chaos Mesh's
    documented example values)."""
    if rate_kbit <= 0:
        raise HarnessError(f"bandwidth of {rate_kbit:g} kbit/s", fix="give a positive rate")
    return {"rate": f"{rate_kbit:g}kbps", "limit": 20 * 2**20, "buffer": 10000}


class NetworkFaults:
    """Network faults between the harness's pods, each undone by :meth:`clear`."""

    def __init__(self, api: NetworkApi, namespace: str, labels: Mapping[str, str]) -> None:
        self.api = api
        self.namespace = namespace
        self.labels = dict(labels)

    def _check(self, pods: Sequence[Mapping[str, Any]]) -> None:
        if not pods:
            raise HarnessError("a network fault needs pods on both sides",
                               fix="name replicas that are running")  # fmt: skip
        for pod in pods:
            require_in_scope(pod, self.namespace, self.labels)

    def partition(
        self,
        pods_a: Sequence[Mapping[str, Any]],
        pods_b: Sequence[Mapping[str, Any]],
        *,
        both_ways: bool = True,
        mode: str = "blackhole",
    ) -> dict[str, Any]:
        """Label both sides, then create the NetworkPolicy; returns what :meth:`clear`
        needs (and the history records)."""
        if mode != "blackhole":
            raise HarnessError(
                f"a {mode} partition cannot be made with NetworkPolicy (it only drops)",
                fix="use mode blackhole on kubernetes, or run on --platform local",
            )
        self._check(pods_a)
        self._check(pods_b)
        key = CUT_LABEL.format(n=next(_ids))
        made: dict[str, Any] = {"kind": "NetworkPolicy", "key": key, "labelled": []}
        try:
            for side, pods in (("a", pods_a), ("b", pods_b)):
                for pod in pods:
                    self.api.label_pod(self.namespace, _name(pod), {key: side})
                    made["labelled"].append(_name(pod))
            obj = partition_policy(key, namespace=self.namespace, labels=self.labels,
                                   b_ips=_pod_ips(pods_b), both_ways=both_ways)  # fmt: skip
            self.api.create(obj)
        except BaseException:
            self.clear(made)  # half made: undo the labels
            raise
        made.update(name=obj["metadata"]["name"], spec=obj["spec"])
        return made

    def _chaos(self, action: str, pods_a, pods_b, settings, *, hold_s: float,
               both_ways: bool) -> dict[str, Any]:  # fmt: skip
        self._check(pods_a)
        self._check(pods_b)
        if not self.api.crd_installed(NETWORK_CHAOS_CRD):
            raise HarnessError(
                f"{action} needs Chaos Mesh, and its CRD {NETWORK_CHAOS_CRD} is not installed",
                fix=INSTALL_FIX,
            )
        obj = network_chaos(action, pods_a, pods_b, settings, namespace=self.namespace,
                            labels=self.labels, duration_s=hold_s + HOLD_MARGIN_S,
                            both_ways=both_ways)  # fmt: skip
        self.api.create(obj)
        return {"kind": "NetworkChaos", "name": obj["metadata"]["name"], "spec": obj["spec"]}

    def latency(self, pods_a, pods_b, delay_ms: float, jitter_ms: float = 0.0, *,
                hold_s: float, both_ways: bool = False) -> dict[str, Any]:  # fmt: skip
        return self._chaos("delay", pods_a, pods_b, delay_settings(delay_ms, jitter_ms),
                           hold_s=hold_s, both_ways=both_ways)  # fmt: skip

    def loss(self, pods_a, pods_b, percent: float, *, hold_s: float,
             both_ways: bool = False) -> dict[str, Any]:  # fmt: skip
        return self._chaos("loss", pods_a, pods_b, loss_settings(percent), hold_s=hold_s,
                           both_ways=both_ways)  # fmt: skip

    def bandwidth(self, pods_a, pods_b, rate_kbit: float, *, hold_s: float,
                  both_ways: bool = False) -> dict[str, Any]:  # fmt: skip
        return self._chaos("bandwidth", pods_a, pods_b, bandwidth_settings(rate_kbit),
                           hold_s=hold_s, both_ways=both_ways)  # fmt: skip

    def clear(self, made: Mapping[str, Any]) -> None:
        """Delete the object (if it was made) and remove the side labels; never half."""
        errors = []
        if made.get("name"):
            api_version = "networking.k8s.io/v1" if made["kind"] == "NetworkPolicy" \
                else API_VERSION  # fmt: skip
            try:
                self.api.delete_object(api_version, str(made["kind"]), self.namespace,
                                       str(made["name"]))  # fmt: skip
            except Exception as exc:  # still remove the labels
                errors.append(exc)
        for pod in made.get("labelled") or ():
            try:
                self.api.label_pod(self.namespace, pod, {str(made["key"]): None})
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
