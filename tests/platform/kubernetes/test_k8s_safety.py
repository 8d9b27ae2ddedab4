"""Safety of the Kubernetes platform: context allow-list, scope guard, loopback URLs."""

from __future__ import annotations

import copy

import pytest
from test_k8s_fakes import FakeApi, load

from harness.core.errors import HarnessError
from harness.platform.kubernetes.api import KubeApi
from harness.platform.kubernetes.cluster import KubernetesCluster
from harness.platform.kubernetes.manifests import PART_OF
from harness.platform.kubernetes.safety import (
    GuardedApi,
    Scope,
    allowed_contexts,
    parse_selector,
    require_allowed_context,
)

POD = load("kill-api-server.json")["events"][0]["object"]  # api-server pod in ha-bench


def test_allow_list_globs_env_and_extra():
    env = {"HA_BENCH_ALLOWED_CONTEXTS": "staging-chaos, k3d-*"}
    allowed = allowed_contexts(["lab"], environ=env)
    assert allowed == ["kind-*", "staging-chaos", "k3d-*", "lab"]
    for name in ("kind-ha-bench", "k3d-x", "staging-chaos", "lab"):
        assert require_allowed_context(name, allowed) == name
    with pytest.raises(
        HarnessError, match=r"'prod' is not allowed.*fix: pass --allow-context prod"
    ):
        require_allowed_context("prod", allowed)
    with pytest.raises(HarnessError, match="no Kubernetes context"):
        require_allowed_context("", allowed)


def test_a_context_off_the_list_is_refused_before_any_api_call(monkeypatch):
    monkeypatch.delenv("HA_BENCH_ALLOWED_CONTEXTS", raising=False)
    api = FakeApi(context="prod", forbid_mutations=True)
    for mode in ("owned", "existing"):
        with pytest.raises(HarnessError, match="'prod' is not allowed"):
            KubernetesCluster(context="prod", mode=mode, api=api)
    assert api.calls == []  # not even a read
    # the adapter itself refuses too, before loading any kubeconfig
    with pytest.raises(HarnessError, match="'prod' is not allowed"):
        KubeApi("prod", kubeconfig="/nonexistent/kubeconfig")


def test_an_allowed_context_is_accepted_without_calls(monkeypatch):
    monkeypatch.setenv("HA_BENCH_ALLOWED_CONTEXTS", "prod-chaos")
    api = FakeApi(context="prod-chaos", forbid_mutations=True)
    cluster = KubernetesCluster(context="prod-chaos", mode="existing", release="af", api=api)
    assert cluster.scope.labels == {"release": "af"}
    cluster.stop()  # never started: nothing to do
    assert api.calls == []


def test_scope_guard_refuses_pods_outside_the_selector_or_namespace():
    api = FakeApi()
    guarded = GuardedApi(api, Scope("ha-bench", dict(PART_OF)), owned=True)
    foreign = copy.deepcopy(POD)
    del foreign["metadata"]["labels"]["app.kubernetes.io/part-of"]
    elsewhere = copy.deepcopy(POD)
    elsewhere["metadata"]["namespace"] = "kube-system"
    no_uid = copy.deepcopy(POD)
    del no_uid["metadata"]["uid"]
    for pod in (foreign, elsewhere, no_uid):
        with pytest.raises(HarnessError, match="outside the harness's scope"):
            guarded.delete_pod(pod, grace_s=0)
        with pytest.raises(HarnessError, match="outside the harness's scope"):
            guarded.evict_pod(pod)
        with pytest.raises(HarnessError, match="outside the harness's scope"):
            guarded.exec_in_pod(pod, "api-server", ["true"], timeout_s=1)
    assert api.mutations() == []
    guarded.delete_pod(POD, grace_s=0)
    assert api.mutations() == [
        (
            "delete_pod",
            ("ha-bench", POD["metadata"]["name"]),
            {"uid": POD["metadata"]["uid"], "grace_s": 0},
        ),
    ]


def test_existing_mode_touches_only_selected_pods():
    api = FakeApi(forbid_mutations=True)
    guarded = GuardedApi(api, Scope("airflow", parse_selector("release=af")), owned=False)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "airflow", "labels": {"release": "af"}},
    }
    with pytest.raises(HarnessError, match="'existing' mode"):
        guarded.apply(configmap)
    with pytest.raises(HarnessError, match="'existing' mode"):
        guarded.scale("StatefulSet", "af-worker", 0)
    with pytest.raises(HarnessError, match="'existing' mode"):
        guarded.delete_namespace()
    pod = copy.deepcopy(POD)
    pod["metadata"].update(namespace="airflow", labels={"release": "other", "component": "x"})
    with pytest.raises(HarnessError, match="outside"):
        guarded.delete_pod(pod, grace_s=0)


def test_owned_mode_applies_only_into_its_namespace():
    api = FakeApi()
    guarded = GuardedApi(api, Scope("ha-bench", dict(PART_OF)), owned=True)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "x", "labels": dict(PART_OF)},
    }
    other_ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "default", "labels": dict(PART_OF)},
    }
    unlabelled = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "ha-bench"},
    }
    for obj in (role, other_ns, unlabelled):
        with pytest.raises(HarnessError, match="outside the harness's scope"):
            guarded.apply(obj)
    # a namespace of that name but not labelled as ours is never deleted
    api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ha-bench"}})
    with pytest.raises(HarnessError, match="outside the harness's scope"):
        guarded.delete_namespace()
    assert api.mutations() == []


def test_selectors_are_equality_only():
    assert parse_selector("component=scheduler, release==af") == {
        "component": "scheduler",
        "release": "af",
    }
    for bad in ("release!=af", "release in (a,b)", "release"):
        with pytest.raises(HarnessError, match="key=value"):
            parse_selector(bad)


def test_probed_urls_must_be_loopback():
    with pytest.raises(HarnessError, match="non-loopback"):
        KubernetesCluster(context="kind-x", lb_url="http://10.0.0.5:8080", api=FakeApi())
    cluster = KubernetesCluster(context="kind-x", lb_url="http://127.0.0.1:9999/", api=FakeApi())
    assert cluster.lb_url == "http://127.0.0.1:9999"
    assert KubernetesCluster(context="kind-x", api=FakeApi()).lb_url == "http://127.0.0.1:30080"
