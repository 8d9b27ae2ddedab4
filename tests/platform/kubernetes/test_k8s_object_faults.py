"""The Kubernetes nemesis's object faults over the recording adapter: each fault creates its
object in the harness's namespace (a NetworkPolicy with labelled pods, a NetworkChaos, a
TimeChaos, an in-place resize), the history records ``invoke`` then ``ok``/``fail``, and
its undo deletes exactly what it made; without Chaos Mesh, a ``fail`` naming the fix."""

from __future__ import annotations

import pytest
from test_k8s_nemesis import NS, Rig

from harness.core.errors import HarnessError
from harness.faults.ops import _takes_hold, arguments
from harness.platform.kubernetes.netchaos import NETWORK_CHAOS_CRD
from harness.run.model import Fault


def _rig(crds=()) -> Rig:
    rig = Rig()
    for pod in rig.state.read(lambda t: t.live_pods()):  # the API has the watched pods
        rig.api.put(pod)
    rig.api.crds = set(crds)
    return rig


def _pod_name(rig: Rig, replica: str) -> str:
    return rig.state.read(lambda t: t.pod_for(replica))["metadata"]["name"]


def test_a_partition_labels_both_pods_creates_a_policy_and_heal_removes_both():
    rig = _rig()
    a, b = _pod_name(rig, "api-server-0"), _pod_name(rig, "api-server-1")
    done = rig.nemesis.partition("api-server-0", ["api-server-1"], both_ways=True)
    policy = rig.api.objects[("NetworkPolicy", done["detail"]["name"])]
    key = done["detail"]["key"]
    assert policy["metadata"]["namespace"] == NS and policy["spec"]["podSelector"] == {
        "matchLabels": {key: "a"}}  # fmt: skip
    assert rig.api.objects[("Pod", a)]["metadata"]["labels"][key] == "a"
    assert rig.api.objects[("Pod", b)]["metadata"]["labels"][key] == "b"
    rig.nemesis.heal("api-server-0")
    assert ("NetworkPolicy", done["detail"]["name"]) not in rig.api.objects
    for pod in (a, b):
        assert key not in rig.api.objects[("Pod", pod)]["metadata"]["labels"]
    phases = [(op, ph) for op, _, ph in rig.phases()]
    assert phases == [("partition", "invoke"), ("partition", "ok"), ("heal", "invoke"),
                      ("heal", "ok")]  # fmt: skip
    assert rig.faults[0]["peers"] == ["api-server-1"]  # the invoke says what was asked


def test_reject_and_missing_chaos_mesh_are_recorded_as_failed_with_the_fix():
    rig = _rig()
    with pytest.raises(HarnessError, match="only drops"):
        rig.nemesis.partition("api-server-0", ["api-server-1"], mode="reject")
    with pytest.raises(HarnessError, match=NETWORK_CHAOS_CRD):
        rig.nemesis.latency("api-server-0", ["api-server-1"], delay_ms=200, hold_s=30)
    assert [ph for _, _, ph in rig.phases()] == ["invoke", "fail", "invoke", "fail"]
    assert "helm install chaos-mesh" in str(rig.faults[-1]["detail"])
    assert not [m for m in rig.api.mutations() if m[0] in ("create", "patch_pod")]


def test_latency_is_a_network_chaos_that_ends_by_itself_and_heal_deletes_it():
    rig = _rig(crds=[NETWORK_CHAOS_CRD])
    done = rig.nemesis.latency("api-server-0", ["api-server-1"], delay_ms=250, jitter_ms=20,
                               hold_s=30)  # fmt: skip
    name = done["detail"]["name"]
    chaos = rig.api.objects[("NetworkChaos", name)]
    assert chaos["spec"]["delay"] == {"latency": "250ms", "jitter": "20ms"}
    assert chaos["spec"]["duration"] == "90s" and chaos["spec"]["direction"] == "both"
    rig.nemesis.heal("api-server-0")
    assert ("NetworkChaos", name) not in rig.api.objects
    assert rig.nemesis.heal("api-server-0")["detail"] == {"undone": []}  # nothing left


def test_clock_skew_and_memory_limit_are_undone_by_their_pairs():
    rig = _rig(crds=["timechaos.chaos-mesh.org"])
    done = rig.nemesis.clock_skew("api-server-0", 60, hold_s=20)
    assert rig.api.objects[("TimeChaos", done["detail"]["name"])]["spec"]["timeOffset"] == "60s"
    rig.nemesis.clock_reset("api-server-0")
    assert ("TimeChaos", done["detail"]["name"]) not in rig.api.objects
    pod = rig.state.read(lambda t: t.pod_for("api-server-0"))
    container = pod["spec"]["containers"][0]
    container.setdefault("resources", {}).setdefault("limits", {})["memory"] = "1Gi"
    rig.state.pod_event("MODIFIED", pod)
    rig.nemesis.memory_limit("api-server-0", 256 * 2**20)
    rig.nemesis.memory_clear("api-server-0")
    resizes = [c for c in rig.api.mutations() if c[0] == "patch_pod"]
    assert [c[2]["subresource"] for c in resizes] == ["resize", "resize"]
    limits = [c[1][2]["spec"]["containers"][0]["resources"]["limits"] for c in resizes]
    assert limits == [{"memory": "256Mi"}, {"memory": "1Gi"}]


def test_the_injector_passes_the_network_fields_and_the_hold_to_objects_that_expire():
    fault = Fault(op="latency", target="worker-0", peers=("api-server/all",), delay_ms=100,
                  jitter_ms=5, both_ways=False, hold_s=30)  # fmt: skip
    assert arguments(fault) == {"both_ways": False, "delay_ms": 100, "jitter_ms": 5}
    rig = _rig()
    assert _takes_hold(rig.nemesis.latency) and not _takes_hold(rig.nemesis.partition)
    with pytest.raises(ValueError, match="needs peers"):
        Fault(op="partition", target="worker-0")
    with pytest.raises(ValueError, match="needs percent"):
        Fault(op="loss", target="worker-0", peers=("postgres",))
