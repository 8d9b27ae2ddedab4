"""Chaos Mesh objects for the resource and clock faults, checked offline against the CRDs'
own schemas (tests/data/chaosmesh/, vendored from chaos-mesh/chaos-mesh), and refused with
one line when Chaos Mesh is not installed or the pod is not the harness's."""

from __future__ import annotations

from typing import Any

import pytest
from crdschema import SCHEMAS, violations

from harness.core.errors import HarnessError
from harness.platform.kubernetes.chaosmesh import (
    API_VERSION,
    CRDS,
    HOLD_MARGIN_S,
    ChaosMesh,
    chaos_name,
    go_duration,
    resize_patch,
    stress_chaos_cpu,
    time_chaos,
)

LABELS = {"release": "ha-bench", "tier": "airflow"}
NS = "ha-bench-1"


def _pod(name="airflow-scheduler-0", cpu="1", namespace=NS, labels=LABELS) -> dict[str, Any]:
    resources = {"limits": {"cpu": cpu, "memory": "1Gi"}} if cpu else {}
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": "u1",
                     "labels": {**labels, "component": "scheduler"}},
        "spec": {"containers": [{"name": "scheduler", "resources": resources},
                                {"name": "sidecar"}]},
    }  # fmt: skip


def _valid(obj: dict[str, Any]) -> None:
    schema = SCHEMAS[obj["kind"]]
    assert obj["apiVersion"] == f"{schema['group']}/{schema['version']}" == API_VERSION
    assert CRDS[obj["kind"]] == schema["crd"] and schema["scope"] == "Namespaced"
    assert violations(obj, schema["openAPIV3Schema"]) == []


def test_the_validator_refuses_what_the_api_server_would():
    bad = time_chaos(_pod(), 60, namespace=NS, labels=LABELS, duration_s=30)
    bad["spec"]["mode"] = "some"
    bad["spec"]["typo"] = 1
    del bad["spec"]["timeOffset"]
    found = violations(bad, SCHEMAS["TimeChaos"]["openAPIV3Schema"])
    assert any("mode" in v for v in found) and any("typo: unknown" in v for v in found)
    assert any("timeOffset: required" in v for v in found)


@pytest.mark.parametrize(("seconds", "text"), [(60, "60s"), (-600, "-600s"), (1.5, "1.5s"),
                                               (0.25, "250ms"), (0, "0s")])  # fmt: skip
def test_durations_are_go_durations(seconds, text):
    assert go_duration(seconds) == text


@pytest.mark.parametrize("offset_s", [60, -60, 600])
def test_a_time_chaos_skews_only_the_wall_clock_of_one_pod(offset_s):
    obj = time_chaos(_pod(), offset_s, namespace=NS, labels=LABELS, duration_s=90)
    _valid(obj)
    spec = obj["spec"]
    assert spec["timeOffset"] == go_duration(offset_s)
    assert spec["clockIds"] == ["CLOCK_REALTIME"], "monotonic clocks stay true"
    assert spec["selector"] == {"pods": {NS: ["airflow-scheduler-0"]}} and spec["mode"] == "all"
    assert spec["containerNames"] == ["scheduler"] and spec["duration"] == "90s"
    assert obj["metadata"]["namespace"] == NS
    assert LABELS.items() <= obj["metadata"]["labels"].items(), "inside the harness's scope"


@pytest.mark.parametrize(("limit", "cores", "workers", "load"),
                         [("1", 0.05, 1, 95), ("2", 0.5, 2, 75), ("500m", 0.1, 1, 40)])  # fmt: skip
def test_a_stress_chaos_leaves_about_the_cores_asked_for(limit, cores, workers, load):
    obj = stress_chaos_cpu(_pod(cpu=limit), cores, namespace=NS, labels=LABELS, duration_s=60)
    _valid(obj)
    assert obj["spec"]["stressors"] == {"cpu": {"workers": workers, "load": load}}
    assert obj["spec"]["containerNames"] == ["scheduler"]


def test_a_stress_chaos_needs_a_cpu_limit_to_compete_for():
    with pytest.raises(HarnessError, match="no CPU limit"):
        stress_chaos_cpu(_pod(cpu=None), 0.05, namespace=NS, labels=LABELS, duration_s=60)
    with pytest.raises(HarnessError, match="limit is 1"):
        stress_chaos_cpu(_pod(cpu="1"), 2, namespace=NS, labels=LABELS, duration_s=60)


def test_names_are_dns_labels_and_unique():
    names = {chaos_name("clock_skew", "airflow-scheduler-" + "x" * 80) for _ in range(3)}
    assert len(names) == 3
    assert all(len(n) <= 63 and n[0].isalnum() and n[-1].isalnum() for n in names)
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyz0123456789-") for n in names)


def test_memory_and_cpu_limits_go_through_a_pod_resize():
    assert resize_patch("worker", memory_bytes=512 * 2**20) == {
        "spec": {"containers": [{"name": "worker",
                                 "resources": {"limits": {"memory": "512Mi"}}}]}
    }  # fmt: skip
    limits = resize_patch("worker", cpu_cores=0.05)["spec"]["containers"][0]["resources"]
    assert limits == {"limits": {"cpu": "50m"}}
    with pytest.raises(HarnessError):
        resize_patch("worker")


class FakeApi:
    def __init__(self, crds: set[str]) -> None:
        self.crds = crds
        self.calls: list[tuple] = []

    def crd_installed(self, name: str) -> bool:
        return name in self.crds

    def create(self, obj):
        self.calls.append(("create", obj))

    def delete_object(self, api_version, kind, namespace, name):
        self.calls.append(("delete", api_version, kind, namespace, name))


def test_without_chaos_mesh_the_fault_is_refused_with_one_line_naming_the_fix():
    api = FakeApi(crds=set())
    mesh = ChaosMesh(api, NS, LABELS)
    assert mesh.missing() == list(CRDS.values())
    with pytest.raises(HarnessError) as refused:
        mesh.clock_skew(_pod(), 60, hold_s=30)
    message = str(refused.value)
    assert "\n" not in message and "timechaos.chaos-mesh.org" in message
    assert "helm install chaos-mesh" in message
    assert api.calls == []


def test_with_chaos_mesh_a_fault_is_made_and_its_undo_deletes_it():
    api = FakeApi(crds=set(CRDS.values()))
    mesh = ChaosMesh(api, NS, LABELS)
    made = mesh.clock_skew(_pod(), -60, hold_s=30)
    (_, obj), = api.calls  # fmt: skip
    _valid(obj)
    assert obj["spec"]["duration"] == go_duration(30 + HOLD_MARGIN_S), "ends itself if orphaned"
    mesh.clear(made)
    assert api.calls[-1] == ("delete", API_VERSION, "TimeChaos", NS, made["name"])
    made = mesh.cpu_throttle(_pod(), 0.05, hold_s=30)
    _valid(api.calls[-1][1])
    assert made["kind"] == "StressChaos"


@pytest.mark.parametrize("pod", [_pod(namespace="default"),
                                 _pod(labels={"release": "other", "tier": "airflow"})])  # fmt: skip
def test_a_pod_outside_the_harness_scope_is_refused(pod):
    api = FakeApi(crds=set(CRDS.values()))
    with pytest.raises(HarnessError, match="outside the harness's scope"):
        ChaosMesh(api, NS, LABELS).clock_skew(pod, 60, hold_s=30)
    assert api.calls == []
