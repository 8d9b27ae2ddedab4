"""Network faults on Kubernetes, offline: the partition's NetworkPolicy against the real
Kubernetes schema (kubernetes-validate, strict) and evaluated on pods of real shapes; the
NetworkChaos objects against the vendored Chaos Mesh CRD; labels, undo and refusals through
an adapter that records the calls."""

from __future__ import annotations

import ipaddress
from typing import Any

import kubernetes_validate
import pytest
from crdschema import SCHEMAS, violations

from harness.core.errors import HarnessError
from harness.platform.kubernetes.netchaos import (
    NETWORK_CHAOS_CRD,
    NetworkFaults,
    bandwidth_settings,
    delay_settings,
    loss_settings,
    network_chaos,
    partition_policy,
)

NS = "ha-bench-1"
LABELS = {"app.kubernetes.io/instance": "ha-bench", "ha-bench/owned": "true"}


def _pod(name: str, ip: str, component: str, namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**LABELS, "component": component}},
        "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
    }  # fmt: skip


WORKER = _pod("airflow-worker-0", "10.244.1.7", "worker")
API_0 = _pod("airflow-api-server-7c9d-x1", "10.244.1.9", "api-server")
API_1 = _pod("airflow-api-server-7c9d-x2", "10.244.2.4", "api-server")
POSTGRES = _pod("postgres-0", "10.244.2.8", "postgres")


class RecordingApi:
    """The adapter's calls, recorded; pod labels kept as the API server would merge them."""

    def __init__(self, crds=(NETWORK_CHAOS_CRD,), fail_create: bool = False) -> None:
        self.crds = set(crds)
        self.fail_create = fail_create
        self.created: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str, str, str]] = []
        self.pod_labels: dict[str, dict[str, str]] = {}

    def crd_installed(self, name: str) -> bool:
        return name in self.crds

    def create(self, obj: dict[str, Any]) -> None:
        if self.fail_create:
            raise RuntimeError("admission webhook denied the request")
        self.created.append(obj)

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.deleted.append((api_version, kind, namespace, name))

    def label_pod(self, namespace: str, name: str, labels) -> None:
        have = self.pod_labels.setdefault(name, {})
        for k, v in labels.items():
            if v is None:
                have.pop(k, None)
            else:
                have[k] = v


# -- a NetworkPolicy evaluator (the documented semantics) ---------------------------------
def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        value, op = labels.get(e["key"]), e["operator"]
        if op == "In" and value not in e["values"]:
            return False
        if op == "NotIn" and value in e["values"]:  # a missing label is "not in"
            return False
    return True


def _peer_matches(peer: dict[str, Any], pod: dict[str, Any], policy_ns: str) -> bool:
    meta = pod["metadata"]
    if "ipBlock" in peer:
        ip = ipaddress.ip_address(pod["status"]["podIP"])
        block = peer["ipBlock"]
        if ip.version != ipaddress.ip_network(block["cidr"]).version:
            return False
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(x) for x in block.get("except", [])
        )
    if "namespaceSelector" in peer:
        ns_labels = {"kubernetes.io/metadata.name": meta["namespace"]}
        if not _selects(peer["namespaceSelector"], ns_labels):
            return False
        return "podSelector" not in peer or _selects(peer["podSelector"], meta["labels"])
    return meta["namespace"] == policy_ns and _selects(peer["podSelector"], meta["labels"])


def allowed(policy: dict[str, Any], src: dict[str, Any], dst: dict[str, Any],
            labels: dict[str, dict[str, str]], *, cni_matches_pod_ips: bool) -> bool:  # fmt: skip
    """Would ``src`` reach ``dst`` with only ``policy`` in the namespace? ``labels``: the
    pods' labels after the harness labelled them; ``cni_matches_pod_ips``: whether the CNI
    lets ``ipBlock`` match pod IPs (implementations differ)."""

    def with_labels(pod):
        return {**pod, "metadata": {**pod["metadata"], "labels": {
            **pod["metadata"]["labels"], **labels.get(pod["metadata"]["name"], {})}}}  # fmt: skip

    src, dst = with_labels(src), with_labels(dst)
    spec, ns = policy["spec"], policy["metadata"]["namespace"]

    def rule_allows(rules, key, other):
        for rule in rules:
            for peer in rule.get(key, []):
                if "ipBlock" in peer and not cni_matches_pod_ips:
                    continue
                if _peer_matches(peer, other, ns):
                    return True
        return False

    isolated_out = "Egress" in spec["policyTypes"] and _selects(
        spec["podSelector"], src["metadata"]["labels"]
    )
    if isolated_out and not rule_allows(spec.get("egress", []), "to", dst):
        return False
    isolated_in = "Ingress" in spec["policyTypes"] and _selects(
        spec["podSelector"], dst["metadata"]["labels"]
    )
    return not isolated_in or rule_allows(spec.get("ingress", []), "from", src)


# -- tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("both_ways", [True, False])
def test_the_partition_policy_is_a_valid_networkpolicy(both_ways):
    version = kubernetes_validate.latest_version()
    policy = partition_policy("ha-bench/cut-1", namespace=NS, labels=LABELS,
                              b_ips=["10.244.1.9", "fd00::9"], both_ways=both_ways)  # fmt: skip
    kubernetes_validate.validate(policy, version, strict=True)
    broken = {**policy, "spec": {**policy["spec"], "egress": [{"towards": []}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


@pytest.mark.parametrize("cni_matches_pod_ips", [True, False])
def test_a_partition_cuts_exactly_the_named_link(cni_matches_pod_ips):
    api = RecordingApi()
    made = NetworkFaults(api, NS, LABELS).partition([WORKER], [API_0, API_1])
    (policy,) = api.created
    labels = api.pod_labels
    kw = {"cni_matches_pod_ips": cni_matches_pod_ips}
    for api_server in (API_0, API_1):
        assert not allowed(policy, WORKER, api_server, labels, **kw)
        assert not allowed(policy, api_server, WORKER, labels, **kw)
        assert allowed(policy, api_server, POSTGRES, labels, **kw)  # other links untouched
    assert allowed(policy, WORKER, POSTGRES, labels, **kw)
    assert allowed(policy, POSTGRES, WORKER, labels, **kw)
    other_ns = _pod("coredns-1", "10.244.0.3", "dns", namespace="kube-system")
    assert allowed(policy, WORKER, other_ns, labels, **kw)
    assert made["labelled"] == [WORKER["metadata"]["name"], API_0["metadata"]["name"],
                                API_1["metadata"]["name"]]  # fmt: skip


def test_a_one_way_partition_only_stops_egress():
    api = RecordingApi()
    NetworkFaults(api, NS, LABELS).partition([WORKER], [API_0], both_ways=False)
    (policy,) = api.created
    assert policy["spec"]["policyTypes"] == ["Egress"] and "ingress" not in policy["spec"]
    labels = api.pod_labels
    assert not allowed(policy, WORKER, API_0, labels, cni_matches_pod_ips=True)
    assert allowed(policy, API_0, WORKER, labels, cni_matches_pod_ips=True)


def test_heal_deletes_the_policy_and_removes_the_labels():
    api = RecordingApi()
    faults = NetworkFaults(api, NS, LABELS)
    made = faults.partition([WORKER], [API_0])
    faults.clear(made)
    assert api.deleted == [("networking.k8s.io/v1", "NetworkPolicy", NS, made["name"])]
    assert all(labels == {} for labels in api.pod_labels.values())


def test_a_failed_create_leaves_no_labels():
    api = RecordingApi(fail_create=True)
    with pytest.raises(RuntimeError, match="admission webhook"):
        NetworkFaults(api, NS, LABELS).partition([WORKER], [API_0])
    assert api.created == [] and all(v == {} for v in api.pod_labels.values())


def test_refusals_are_one_line_and_name_the_fix():
    faults = NetworkFaults(RecordingApi(), NS, LABELS)
    with pytest.raises(HarnessError, match=r"NetworkPolicy \(it only drops\)") as e:
        faults.partition([WORKER], [API_0], mode="reject")
    assert "blackhole" in e.value.fix
    stranger = _pod("someone-else", "10.244.3.3", "web", namespace="default")
    with pytest.raises(HarnessError, match="outside the harness's scope"):
        faults.partition([WORKER], [stranger])
    with pytest.raises(HarnessError, match="pods on both sides"):
        faults.partition([WORKER], [])
    no_chaos_mesh = NetworkFaults(RecordingApi(crds=()), NS, LABELS)
    with pytest.raises(HarnessError, match=NETWORK_CHAOS_CRD) as e:
        no_chaos_mesh.latency([POSTGRES], [API_0], 200, hold_s=30)
    assert "helm install chaos-mesh" in e.value.fix and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("action", "settings"),
    [("delay", delay_settings(250, 50)), ("delay", delay_settings(100)),
     ("loss", loss_settings(25)), ("bandwidth", bandwidth_settings(8000))],
)  # fmt: skip
def test_network_chaos_objects_validate_against_the_crd(action, settings):
    obj = network_chaos(action, [POSTGRES], [API_0, API_1], settings, namespace=NS,
                        labels=LABELS, duration_s=90)  # fmt: skip
    schema = SCHEMAS["NetworkChaos"]
    assert obj["apiVersion"] == f"{schema['group']}/{schema['version']}"
    assert schema["crd"] == NETWORK_CHAOS_CRD and schema["scope"] == "Namespaced"
    assert violations(obj, schema["openAPIV3Schema"]) == []
    assert obj["spec"]["selector"] == {"pods": {NS: ["postgres-0"]}}
    assert obj["spec"]["target"]["selector"]["pods"][NS] == [API_0["metadata"]["name"],
                                                             API_1["metadata"]["name"]]  # fmt: skip


def test_the_crd_check_catches_a_bad_latency():
    obj = network_chaos("delay", [POSTGRES], [API_0], {"latency": "100 msec"}, namespace=NS,
                        labels=LABELS, duration_s=90)  # fmt: skip
    obj["spec"]["direction"] = "sideways"
    found = violations(obj, SCHEMAS["NetworkChaos"]["openAPIV3Schema"])
    assert any("latency" in v and "does not match" in v for v in found)
    assert any("direction" in v for v in found)


def test_a_network_chaos_is_undone_by_deleting_it_and_ends_by_itself():
    api = RecordingApi()
    faults = NetworkFaults(api, NS, LABELS)
    made = faults.loss([API_0, API_1], [POSTGRES], 30, hold_s=45, both_ways=True)
    assert made["spec"]["duration"] == "105s" and made["spec"]["direction"] == "both"
    faults.clear(made)
    assert api.deleted == [("chaos-mesh.org/v1alpha1", "NetworkChaos", NS, made["name"])]
    with pytest.raises(HarnessError, match="0 < percent"):
        loss_settings(0)
