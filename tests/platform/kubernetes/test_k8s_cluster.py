"""KubernetesCluster on a fake adapter (owned and existing mode) and its pure helpers (the
live tests on a kind cluster are in test_k8s_live.py)."""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_k8s_fakes import SYNTHETIC, FakeApi, load, watch_events

from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.core.topology import Topology
from harness.platform.base import Cluster, Nemesis
from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.cluster import (
    BringUpError,
    KubernetesCluster,
    bring_up_problem,
    workload_ready,
)
from harness.platform.kubernetes.manifests import parse_documents

DOCS = parse_documents((SYNTHETIC / "rendered.yaml").read_text())
POD = watch_events(load("kill-api-server.json"))[0]["object"]  # a ready pod
TOPOLOGY = Topology(api_servers=2, schedulers=2, dag_processors=1, triggerers=1, workers=2)


def pods_for(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """What the controllers would make: ready pods with the template's labels."""
    kind, name = workload["kind"], workload["metadata"]["name"]
    labels = workload["spec"]["template"]["metadata"]["labels"]
    out = []
    for i in range(int(workload["spec"].get("replicas", 1))):
        pod = copy.deepcopy(POD)
        pod_name = f"{name}-{i}" if kind == "StatefulSet" else f"{name}-6f7d8-{i:05d}"
        pod["metadata"].update(
            name=pod_name,
            uid=f"uid-{pod_name}",
            labels=dict(labels),
            namespace=workload["metadata"]["namespace"],
        )
        owner = pod["metadata"]["ownerReferences"][0]
        owner["kind"] = "StatefulSet" if kind == "StatefulSet" else "ReplicaSet"
        pod["status"]["containerStatuses"][0]["name"] = labels["component"]
        out.append(pod)
    return out


def ready_status(workload: dict[str, Any]) -> None:
    n = int(workload["spec"].get("replicas", 1))
    workload["status"] = {
        "observedGeneration": 1,
        "replicas": n,
        "readyReplicas": n,
        "updatedReplicas": n,
    }
    workload["metadata"]["generation"] = 1


class FakeCluster(FakeApi):
    """FakeApi plus controllers: an applied workload is at once ready, with its pods."""

    def apply(self, obj: dict[str, Any]) -> None:
        super().apply(obj)
        if obj["kind"] in ("Deployment", "StatefulSet"):
            stored = self.objects[(obj["kind"], obj["metadata"]["name"])]
            ready_status(stored)
            for pod in pods_for(stored):
                self.put(pod)


def owned_cluster(api: FakeApi, **kw: Any) -> KubernetesCluster:
    return KubernetesCluster(
        TOPOLOGY,
        context="kind-ha-bench",
        manifests=DOCS,
        lb_url="http://127.0.0.1:30080",
        forward_api_servers=False,
        api=api,
        **{"ready_timeout_s": 10, **kw},
    )


def test_owned_start_applies_watches_and_deletes_its_namespace_on_stop():
    api = FakeCluster()
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe(seen.append)
    cluster = owned_cluster(api, bus=bus)
    assert isinstance(cluster, Cluster)
    with cluster:
        assert [c[0:2] for c in api.mutations()][:3] == [
            ("apply", ("Namespace", "ha-bench")),
            ("create", ("Secret", "airflow-secrets")),
            ("apply", ("ConfigMap", "airflow-env")),
        ]
        applied = [c[1][1] for c in api.mutations() if c[0] == "apply"]
        assert "airflow-secrets" not in applied and len(applied) == 10
        assert cluster.replica_names() == [
            "postgres",
            "api-server-0",
            "api-server-1",
            "scheduler-0",
            "scheduler-1",
            "dag-processor-0",
            "triggerer-0",
            "worker-0",
            "worker-1",
        ]
        assert all(cluster.is_ready(n) for n in cluster.replica_names())
        assert cluster.replica_names("api-server") == ["api-server-0", "api-server-1"]
        ready = {e["replica"] for e in seen if e["type"] == "lifecycle" and e["state"] == "ready"}
        assert ready == set(cluster.replica_names())
        meta = cluster.metadata()
        assert meta["platform"] == "kubernetes" and meta["server_version"] == "v1.32.2"
        assert meta["workloads"]["worker"] == "StatefulSet/airflow-worker"
        assert meta["images"]["Deployment/airflow-api-server/api-server"].startswith(
            "apache/airflow:3.3.2"
        )
        assert meta["replicas"]["scheduler-1"] == "scheduler"
        assert json.dumps(meta)  # JSON-able for the results
        assert isinstance(cluster.nemesis, Nemesis)
        done = cluster.nemesis.kill("scheduler-1")
        assert done["detail"]["deleted_after_s"] is not None  # seen through the pod watch
        assert not cluster.is_ready("scheduler-1") and cluster.is_ready("scheduler-0")
        deleted = [c for c in api.mutations() if c[0] == "delete_pod"]
        assert deleted == [
            (
                "delete_pod",
                ("ha-bench", "airflow-scheduler-6f7d8-00001"),
                {"uid": "uid-airflow-scheduler-6f7d8-00001", "grace_s": 0},
            )
        ]
        assert api.mutations()[-1][0] == "delete_pod"
    assert api.mutations()[-1] == ("delete_namespace", ("ha-bench",), {})
    assert seen[-1]["type"] == "marker" and seen[-1]["name"] == "cluster_stopped"
    assert not any(t.is_alive() for t in cluster._threads)


def test_apply_errors_name_the_object_and_the_fix():
    api = FakeCluster()
    real_apply = api.apply

    def apply(obj: dict[str, Any]) -> None:
        if obj["kind"] == "Job":
            raise KubeApiError(422, "Unprocessable Entity", "spec.template: field is immutable")
        real_apply(obj)

    api.apply = apply  # type: ignore[method-assign]
    with (
        pytest.raises(
            HarnessError,
            match=r"Job airflow-migrate-database exists .*immutable.*"
            r"delete job airflow-migrate-database",
        ),
        owned_cluster(api),
    ):
        pass
    assert api.mutations()[-1] == ("delete_namespace", ("ha-bench",), {})  # cleaned up


def test_owned_keeps_the_namespace_when_asked():
    api = FakeCluster()
    with owned_cluster(api, keep_namespace=True):
        pass
    assert "delete_namespace" not in [c[0] for c in api.mutations()]


def test_owned_refuses_a_namespace_it_does_not_own():
    api = FakeCluster(forbid_mutations=True)
    api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ha-bench"}})
    with (
        pytest.raises(HarnessError, match="exists and is not labelled as owned"),
        owned_cluster(api),
    ):
        pass
    assert api.mutations() == []


def test_existing_mode_adopts_a_helm_release_without_changing_anything():
    api = FakeApi(forbid_mutations=True)
    api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "airflow"}})
    for doc in DOCS:  # the chart's objects, labelled release=af, in namespace airflow
        if doc["kind"] in ("Deployment", "StatefulSet") and doc["metadata"]["name"] != "postgres":
            w = copy.deepcopy(doc)
            w["metadata"].update(
                namespace="airflow",
                name="af-" + w["metadata"]["name"][8:],
                labels={"release": "af", "tier": "airflow"},
            )
            w["spec"]["template"]["metadata"]["labels"]["release"] = "af"
            ready_status(w)
            api.put(w)
            for pod in pods_for(w):
                api.put(pod)
    with KubernetesCluster(
        Topology(),
        context="kind-ha-bench",
        mode="existing",
        namespace="airflow",
        release="af",
        lb_url="http://127.0.0.1:8080",
        forward_api_servers=False,
        api=api,
        ready_timeout_s=10,
    ) as cluster:
        assert cluster.replica_names() == [
            "api-server-0",
            "api-server-1",
            "scheduler-0",
            "scheduler-1",
            "dag-processor-0",
            "triggerer-0",
            "worker-0",
            "worker-1",
        ]
        assert all(cluster.is_ready(n) for n in cluster.replica_names())
        assert cluster.api_service == "af-api-server"
        assert cluster.metadata()["observed_replicas"]["worker"] == 2
        with pytest.raises(HarnessError, match="'existing' mode"):
            cluster.nemesis.scale_to_zero("worker")
    assert api.mutations() == []  # forbid_mutations would have failed the test anyway


def test_ledger_from_the_host_file(tmp_path):
    cluster = KubernetesCluster(context="kind-x", ledger_dir=tmp_path, api=FakeApi())
    assert cluster.ledger_mark() == 0 and cluster.ledger_since(0) == []
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text('{"phase": "start", "t_wall": 1}\n')
    mark = cluster.ledger_mark()
    with open(ledger, "a") as f:
        f.write('{"phase": "end", "t_wall": 2}\n{"phase": "st')  # a torn last line
    assert cluster.ledger_since(mark) == [{"phase": "end", "t_wall": 2}]


def test_ledger_through_exec_in_one_worker_pod_per_node():
    api = FakeCluster()
    files = {"airflow-worker-0": b'{"phase": "start", "t_wall": 1}\n'}

    def exec_handler(pod: str, command: list[str]) -> tuple[int, str, str]:
        script = command[-1]
        data = files.get(pod, b"")
        if "wc -c" in script:
            return 0, f"{len(data)}\n", ""
        if "tail -c +" not in script:
            return api._shell(command)  # the round trip at start
        start = int(script.split("tail -c +")[1].split()[0])
        return 0, data[start - 1 :].decode(), ""

    api.exec_handler = exec_handler
    with owned_cluster(api) as cluster:
        assert cluster.ledger_via == "exec" and cluster.ledger_file is None  # no ledger_dir
        mark = cluster.ledger_mark()
        files["airflow-worker-0"] += b'{"phase": "end", "t_wall": 2}\n'
        assert cluster.ledger_since(mark) == [{"phase": "end", "t_wall": 2}]
        execs = [c[1] for c in api.mutations() if c[0] == "exec"]
        assert {e[1] for e in execs} == {"airflow-worker-0"}  # both workers on one node
        assert execs[0][2] == "worker" and execs[0][3][:2] == ["sh", "-c"]


def test_workload_ready():
    w = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2},
    }
    assert workload_ready(w)
    assert not workload_ready({**w, "status": {**w["status"], "observedGeneration": 1}})
    assert not workload_ready({**w, "status": {**w["status"], "readyReplicas": 1}})
    assert not workload_ready({**w, "status": {**w["status"], "updatedReplicas": 1}})
    assert workload_ready({"metadata": {}, "spec": {"replicas": 0}, "status": {}})


def test_bring_up_problems_are_reported_at_once():
    bad = copy.deepcopy(POD)
    cs = bad["status"]["containerStatuses"][0]
    cs["state"] = {
        "waiting": {
            "reason": "ImagePullBackOff",
            "message": 'Back-off pulling image "apache/airflow:9.9.9"',
        }
    }
    assert bring_up_problem([POD]) is None
    assert bring_up_problem([bad]) == (
        f"pod {POD['metadata']['name']} container api-server: ImagePullBackOff "
        '(Back-off pulling image "apache/airflow:9.9.9")'
    )
    cs.update(state={"waiting": {"reason": "CrashLoopBackOff"}}, restartCount=4)
    assert bring_up_problem([bad]) is None  # give it a few restarts
    cs["restartCount"] = 5
    assert "CrashLoopBackOff" in (bring_up_problem([bad]) or "")


def _pod(name: str, component: str, restarts: list[int], image: str | None = None) -> dict:
    """The kill-api-server fixture's ready pod as ``name``, one container per restart count."""
    pod = copy.deepcopy(POD)
    pod["metadata"].update(name=name, uid=f"uid-{name}")
    pod["metadata"]["labels"]["component"] = component
    first = pod["status"]["containerStatuses"][0]
    pod["status"]["containerStatuses"] = [
        {**copy.deepcopy(first), "name": f"c{i}", "restartCount": n} for i, n in enumerate(restarts)
    ]
    if image is not None:
        pod["spec"]["containers"][0]["image"] = image
    return pod


def test_prepare_repetition_sums_the_container_restarts_of_each_replicas_pod():
    cluster = KubernetesCluster(context="kind-x", api=FakeApi())
    cluster.state.read(lambda t: t.expected.update({"api-server": 2, "scheduler": 1}))
    cluster.state.resync_pods(
        [
            _pod("airflow-api-server-6f7d8-00000", "api-server", [3, 1]),  # app + a sidecar
            _pod("airflow-api-server-6f7d8-00001", "api-server", [0]),
        ]
    )
    assert cluster.prepare_repetition() == {"api-server-0": 4, "api-server-1": 0, "scheduler-0": 0}
    # a replaced pod starts again at 0 (its replacement is a new incarnation, not a restart)
    cluster.state.pod_event("DELETED", _pod("airflow-api-server-6f7d8-00000", "api-server", [3, 1]))
    cluster.state.pod_event("ADDED", _pod("airflow-api-server-6f7d8-00002", "api-server", [0]))
    assert cluster.prepare_repetition()["api-server-0"] == 0
    assert cluster.state.read(lambda t: t.incarnation("api-server-0")) == 2
    assert isinstance(cluster, Cluster)


def test_metadata_names_the_airflow_image_and_no_packages():
    with owned_cluster(FakeCluster()) as cluster:
        env = cluster.metadata()["airflow_env"]
    assert env["image"].startswith("apache/airflow:3.3.2")
    assert env["packages"] is None and env["packages_sha256"] is None
    existing = KubernetesCluster(context="kind-x", api=FakeApi())  # nothing applied: the pods
    existing.state.resync_pods(
        [_pod("af-api-server-0", "api-server", [0], image="my.registry/airflow:3.3.2-custom")]
    )
    assert existing.metadata()["airflow_env"]["image"] == "my.registry/airflow:3.3.2-custom"


class BadImageCluster(FakeApi):
    """Applied workloads stay unready; 1 s after the api-server Deployment is applied, the
    watch delivers the bad-image fixture's pods: the init container's ErrImagePull and
    the migration Job pod's."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.delivered_at: float | None = None

    def apply(self, obj: dict[str, Any]) -> None:
        super().apply(obj)
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "airflow-api-server":
            threading.Timer(1.0, self._deliver).start()

    def _deliver(self) -> None:
        pods: dict[str, dict[str, Any]] = {}
        for e in watch_events(load("bad-image.json")):
            pods[e["object"]["metadata"]["uid"]] = e["object"]
        with self._lock:
            for pod in pods.values():
                self.put(pod)
                self.pending.setdefault("Pod", []).append(("MODIFIED", pod))
            self.delivered_at = time.monotonic()


def test_a_bad_tag_stops_the_bring_up_within_seconds_of_the_event():
    api = BadImageCluster()
    with pytest.raises(BringUpError) as err, owned_cluster(api, ready_timeout_s=120):
        pass
    raised = time.monotonic()
    assert api.delivered_at is not None and raised - api.delivered_at < 10.0
    assert "init container wait-for-airflow-migrations: ImagePullBackOff" in str(err.value)
    assert "describe pods" in str(err.value)


def test_pre_flight_refuses_a_missing_image_and_oversized_requests_before_applying():
    api = FakeCluster()
    checked: list[list[str]] = []

    def image_check(images: list[str]) -> tuple[list[str], list[str]]:
        checked.append(images)
        return ["image apache/airflow:9.9.9 does not exist in Docker Hub"], []

    with (
        pytest.raises(BringUpError, match=r"does not exist in Docker Hub.*kind load docker-image"),
        owned_cluster(api, image_check=image_check),
    ):
        pass
    assert "postgres:16.4" in checked[0] and "busybox:1.36.1" in checked[0]
    assert api.mutations() == []  # nothing applied
    small = FakeCluster()
    small.put(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "ha-bench-control-plane"},
            "status": {"allocatable": {"cpu": "1", "memory": "1Gi"}},
        }
    )
    with (
        pytest.raises(BringUpError, match=r"request more than the nodes can allocate: .*memory"),
        owned_cluster(small, image_check=lambda images: ([], [])),
    ):
        pass
    assert small.mutations() == []


def test_ledger_round_trip_finds_the_host_mount(tmp_path: Path):
    api = FakeCluster()
    api.host_dir = tmp_path  # the node's /var/lib/ha-bench shows here, as kind up maps it
    with owned_cluster(api, ledger_dir=tmp_path) as cluster:
        assert cluster.ledger_via == "host"
        assert cluster.ledger_file == tmp_path / "ledger.jsonl"
        assert cluster.metadata()["ledger_round_trip"] == "host"
    assert list(tmp_path.iterdir()) == []  # the token is removed on both sides
    assert api.node_files == {}


def test_ledger_round_trip_falls_back_to_exec_without_the_mount(tmp_path: Path, monkeypatch):
    import harness.platform.kubernetes.ledger as ledger_module

    monkeypatch.setattr(ledger_module, "LEDGER_ROUND_TRIP_S", 0.3)
    said: list[str] = []
    api = FakeCluster()  # a cluster made by plain `kind create`: nothing reaches tmp_path
    with owned_cluster(api, ledger_dir=tmp_path, log=said.append) as cluster:
        assert cluster.ledger_via == "exec" and cluster.ledger_file is None
        assert "ledger" in cluster.metadata()["ledger"] and "exec" in cluster.metadata()["ledger"]
    assert any("does not see the node's /var/lib/ha-bench" in line for line in said)


def test_ledger_round_trip_stops_the_bring_up_when_exec_cannot_write():
    api = FakeCluster()

    def handler(pod: str, command: list[str]) -> tuple[int, str, str]:
        return 1, "", "sh: can't create /var/lib/ha-bench/x: Permission denied"

    api.exec_handler = handler
    with (
        pytest.raises(HarnessError, match=r"the ledger cannot be written in airflow-worker-0:"),
        owned_cluster(api),
    ):
        pass
