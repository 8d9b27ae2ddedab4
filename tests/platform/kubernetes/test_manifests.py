"""The Kubernetes manifests (manifests/): rendered with ``kubectl kustomize --load-restrictor
LoadRestrictionsNone`` (as the harness renders them), every document
validated strictly against the Kubernetes OpenAPI schemas, and the invariants the harness
and the benchmark rely on checked. Offline: no cluster is needed."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from harness.core.topology import DEFAULT_AIRFLOW_VERSION
from harness.platform.kubernetes.manifests import KUSTOMIZE_FLAGS

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests"
BASE = MANIFESTS / "base"
KIND_OVERLAY = MANIFESTS / "overlays" / "kind"
KIND_CLUSTER = MANIFESTS / "kind" / "cluster.yaml"
DAGS = ROOT / "harness" / "observe" / "workload" / "dags" / "ha_bench_dags.py"

NAMESPACE = "ha-bench"
COMMON_LABELS = {"app.kubernetes.io/part-of": "airflow-ha-bench", "release": "ha-bench"}
AIRFLOW_IMAGE = f"apache/airflow:{DEFAULT_AIRFLOW_VERSION}"
LEDGER_DIR = "/var/lib/ha-bench"
DAGS_DIR = "/opt/airflow/dags/ha-bench"

# (kind, name) -> (component, replicas); the names and labels are a contract of the harness.
WORKLOADS: dict[tuple[str, str], tuple[str, int]] = {
    ("Deployment", "airflow-api-server"): ("api-server", 2),
    ("Deployment", "airflow-scheduler"): ("scheduler", 2),
    ("Deployment", "airflow-dag-processor"): ("dag-processor", 1),
    ("Deployment", "airflow-triggerer"): ("triggerer", 1),
    ("StatefulSet", "airflow-worker"): ("worker", 2),
    ("StatefulSet", "postgres"): ("postgres", 1),
    ("StatefulSet", "redis"): ("redis", 1),
}
AIRFLOW_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer", "worker"}
SERVICES = {"airflow-api-server": 8080, "postgres": 5432, "redis": 6379}
PDBS = {"airflow-api-server", "airflow-scheduler", "airflow-worker"}
SECRET_ENV = {
    "AIRFLOW__CORE__FERNET_KEY": "fernet-key",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret",
    "AIRFLOW__API__SECRET_KEY": "api-secret-key",
}
AIRFLOW_ENV = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": DAGS_DIR,
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://airflow-api-server:8080/execution/",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
        "postgresql+psycopg2://airflow:airflow@postgres:5432/airflow"
    ),
    "AIRFLOW__CELERY__BROKER_URL": "redis://redis:6379/0",
    "AIRFLOW__CELERY__RESULT_BACKEND": "db+postgresql://airflow:airflow@postgres:5432/airflow",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
    "HA_BENCH_LEDGER": f"{LEDGER_DIR}/ledger.jsonl",
}

Doc = dict[str, Any]


@cache
def _render(path: Path) -> tuple[Doc, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no `kubectl` binary on PATH: cannot render the kustomizations")
    out = subprocess.run(
        [kubectl, "kustomize", *KUSTOMIZE_FLAGS, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    flags = " ".join(KUSTOMIZE_FLAGS)
    assert out.returncode == 0, f"kubectl kustomize {flags} {path} failed:\n{out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


@pytest.fixture(params=[KIND_OVERLAY, BASE], ids=["overlay-kind", "base"])
def docs(request: pytest.FixtureRequest) -> tuple[Doc, ...]:
    return _render(request.param)


@pytest.fixture
def kind_docs() -> tuple[Doc, ...]:
    return _render(KIND_OVERLAY)


def find(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_templates(docs: tuple[Doc, ...]) -> Iterator[tuple[Doc, Doc]]:
    """(owner, pod template) of every workload: Deployments, StatefulSets and Jobs."""
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield d, d["spec"]["template"]


def all_containers(template: Doc) -> list[Doc]:
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def probe_command(probe: Doc) -> str:
    return " ".join(probe["exec"]["command"])


# --- schema -------------------------------------------------------------------------------


def test_every_document_validates_against_the_kubernetes_schemas() -> None:
    version = kubernetes_validate.latest_version()
    major, minor = (int(p) for p in version.split(".")[:2])
    assert (major, minor) >= (1, 35), f"kubernetes-validate ships only schemas up to {version}"
    seen: set[str] = set()
    errors = []
    for path in (KIND_OVERLAY, BASE):
        for d in _render(path):
            key = json.dumps(d, sort_keys=True)
            if key in seen:  # the base and the overlay share most documents
                continue
            seen.add(key)
            try:
                kubernetes_validate.validate(d, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                where = "/".join(str(p) for p in e.absolute_path)
                errors.append(f"{d['kind']}/{d['metadata']['name']} at {where}: {e.message}")
    assert len(seen) > len(WORKLOADS)
    assert not errors, "\n\n".join(errors)


def test_the_objects_are_the_contract(docs: tuple[Doc, ...]) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert set(WORKLOADS) <= kinds
    assert {("Service", s) for s in SERVICES} <= kinds
    assert {("PodDisruptionBudget", p) for p in PDBS} <= kinds
    assert {("Namespace", NAMESPACE), ("ConfigMap", "airflow-env")} <= kinds
    assert ("Job", "airflow-db-migrate") in kinds
    # The harness creates the Secret with random values; it is never committed.
    assert not [d for d in docs if d["kind"] == "Secret"]
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == NAMESPACE, d["metadata"]["name"]


# --- labels -------------------------------------------------------------------------------


def test_every_object_and_pod_template_carries_the_labels(docs: tuple[Doc, ...]) -> None:
    for d in docs:
        labels = d["metadata"].get("labels", {})
        assert COMMON_LABELS.items() <= labels.items(), f"{d['kind']}/{d['metadata']['name']}"
    for owner, template in pod_templates(docs):
        labels = template["metadata"]["labels"]
        assert COMMON_LABELS.items() <= labels.items(), owner["metadata"]["name"]
        assert labels["component"] == owner["metadata"]["labels"]["component"]


def test_workloads_have_the_helm_chart_component_labels(docs: tuple[Doc, ...]) -> None:
    for (kind, name), (component, _) in WORKLOADS.items():
        workload = find(docs, kind, name)
        selector = workload["spec"]["selector"]["matchLabels"]
        for labels in (
            workload["metadata"]["labels"],
            workload["spec"]["template"]["metadata"]["labels"],
        ):
            assert labels["component"] == component, name
            assert selector.items() <= labels.items(), f"{name}: selector must match its pods"
            if component in AIRFLOW_COMPONENTS:
                assert labels["tier"] == "airflow", name
            else:
                assert "tier" not in labels, name
        assert selector["component"] == component


def test_services_select_their_workload(docs: tuple[Doc, ...]) -> None:
    for name, port in SERVICES.items():
        service = find(docs, "Service", name)
        assert [p["port"] for p in service["spec"]["ports"]] == [port]
        selected = [
            owner["metadata"]["name"]
            for owner, t in pod_templates(docs)
            if service["spec"]["selector"].items() <= t["metadata"]["labels"].items()
        ]
        assert selected == [name], f"Service {name} selects {selected}"


# --- workloads ----------------------------------------------------------------------------


def test_replicas(docs: tuple[Doc, ...]) -> None:
    for (kind, name), (_, replicas) in WORKLOADS.items():
        assert find(docs, kind, name)["spec"]["replicas"] == replicas, name


def test_every_container_has_probes_and_resource_requests(docs: tuple[Doc, ...]) -> None:
    for owner, template in pod_templates(docs):
        for c in all_containers(template):
            where = f"{owner['metadata']['name']}/{c['name']}"
            resources = c.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert set(resources.get("limits", {})) == {"memory"}, f"{where}: memory limit only"
        if owner["kind"] == "Job":
            continue
        for c in template["spec"]["containers"]:
            assert "readinessProbe" in c or "livenessProbe" in c, owner["metadata"]["name"]


def test_pdb_selectors_match_a_workload(docs: tuple[Doc, ...]) -> None:
    for name in PDBS:
        pdb = find(docs, "PodDisruptionBudget", name)
        assert pdb["spec"]["maxUnavailable"] == 1
        selector = pdb["spec"]["selector"]["matchLabels"]
        matched = [
            owner["metadata"]["name"]
            for owner, t in pod_templates(docs)
            if selector.items() <= t["metadata"]["labels"].items()
        ]
        assert matched == [name], f"PDB {name} selects {matched}"


def test_airflow_images_are_the_default_version(docs: tuple[Doc, ...]) -> None:
    images = {}
    for owner, template in pod_templates(docs):
        for c in all_containers(template):
            images[f"{owner['metadata']['name']}/{c['name']}"] = c["image"]
    airflow = {k: v for k, v in images.items() if v.split(":")[0] == "apache/airflow"}
    assert airflow, "no Airflow container rendered"
    assert set(airflow.values()) == {AIRFLOW_IMAGE}, airflow
    assert {v for v in images.values() if v not in airflow.values()} == {"postgres:16", "redis:7"}


def test_airflow_pods_share_config_dags_and_wait_for_migrations(docs: tuple[Doc, ...]) -> None:
    dags = next(d for d in docs if d["kind"] == "ConfigMap" and "ha_bench_dags.py" in d["data"])
    assert dags["metadata"]["name"].startswith("ha-bench-dags")
    for owner, template in pod_templates(docs):
        if template["metadata"]["labels"].get("tier") != "airflow":
            continue
        name = owner["metadata"]["name"]
        spec = template["spec"]
        for c in spec["containers"]:
            assert {"configMapRef": {"name": "airflow-env"}} in c["envFrom"], name
            env = env_of(c)
            for var, key in SECRET_ENV.items():
                ref = env[var]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": "airflow-secrets", "key": key}, f"{name}: {var}"
            replica = env["HA_BENCH_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"]
            assert replica == "metadata.name"
        if owner["kind"] == "Job":
            assert spec["containers"][0]["args"] == ["airflow", "db", "migrate"]
            continue
        waits = [
            " ".join(c.get("args", []))
            for c in spec.get("initContainers", [])
            if "check-migrations" in c.get("args", [])
        ]
        assert waits == ["airflow db check-migrations --migration-wait-timeout 300"], name
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["dags"]["configMap"]["name"] == dags["metadata"]["name"], name
        mounts = [m for c in spec["containers"] for m in c["volumeMounts"] if m["name"] == "dags"]
        assert [Path(m["mountPath"]).parent for m in mounts] == [Path(DAGS_DIR)], name


def test_airflow_env_config_map() -> None:
    data = find(_render(BASE), "ConfigMap", "airflow-env")["data"]
    assert AIRFLOW_ENV.items() <= data.items()
    assert not SECRET_ENV.keys() & data.keys(), "secrets belong in the Secret airflow-secrets"


def test_ledger_hostpath_on_workers_and_triggerer(docs: tuple[Doc, ...]) -> None:
    for kind, name in (("StatefulSet", "airflow-worker"), ("Deployment", "airflow-triggerer")):
        spec = find(docs, kind, name)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["ledger"]["hostPath"] == {"path": LEDGER_DIR, "type": "DirectoryOrCreate"}
        mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["ledger"] == LEDGER_DIR


def test_worker_shuts_down_warm(docs: tuple[Doc, ...]) -> None:
    template = find(docs, "StatefulSet", "airflow-worker")["spec"]["template"]
    assert template["spec"]["terminationGracePeriodSeconds"] == 600
    worker = template["spec"]["containers"][0]
    assert worker["args"] == ["airflow", "celery", "worker"]
    assert env_of(worker)["DUMB_INIT_SETSID"]["value"] == "0"
    assert "command" not in worker, "keep the image's dumb-init entrypoint"
    ping = probe_command(worker["livenessProbe"])
    assert (
        "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping "
        "-d celery@$(hostname)"
    ) in " ".join(ping.split())


def test_probes_follow_the_helm_chart(docs: tuple[Doc, ...]) -> None:
    api = find(docs, "Deployment", "airflow-api-server")["spec"]["template"]["spec"]
    c = api["containers"][0]
    assert c["args"] == ["airflow", "api-server", "--port", "8080"]
    live, start, ready = c["livenessProbe"], c["startupProbe"], c["readinessProbe"]
    assert live["httpGet"]["path"] == start["httpGet"]["path"] == "/api/v2/monitor/health"
    assert (live["initialDelaySeconds"], live["timeoutSeconds"]) == (15, 5)
    assert (live["failureThreshold"], live["periodSeconds"]) == (5, 10)
    assert (start["timeoutSeconds"], start["failureThreshold"], start["periodSeconds"]) == (
        20,
        6,
        10,
    )
    # Airflow 3.3.2 builds the Execution API lazily: readiness must exercise it.
    assert ready["httpGet"]["path"] == "/execution/health"
    assert ready["periodSeconds"] == 5

    for name, job_type, grace in (
        ("airflow-scheduler", "SchedulerJob", 10),
        ("airflow-dag-processor", "DagProcessorJob", 60),
        ("airflow-triggerer", "TriggererJob", 60),
    ):
        spec = find(docs, "Deployment", name)["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] == grace, name
        live = spec["containers"][0]["livenessProbe"]
        assert f"airflow jobs check --job-type {job_type} --local" in probe_command(live)
        timing = ("initialDelaySeconds", "timeoutSeconds", "failureThreshold", "periodSeconds")
        assert [live[k] for k in timing] == [10, 20, 5, 60], name
    scheduler = find(docs, "Deployment", "airflow-scheduler")["spec"]["template"]["spec"]
    assert scheduler["containers"][0]["args"] == ["airflow", "scheduler"]

    for name, command in (("postgres", "pg_isready"), ("redis", "redis-cli ping")):
        c = find(docs, "StatefulSet", name)["spec"]["template"]["spec"]["containers"][0]
        assert probe_command(c["readinessProbe"]).startswith(command), name


# --- DAGs ---------------------------------------------------------------------------------


def test_dags_config_map_is_the_package_file(docs: tuple[Doc, ...]) -> None:
    """The generated ConfigMap holds exactly the package's DAG file, under its own name."""
    dags = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ha-bench-dags")
    ]
    assert len(dags) == 1, [d["metadata"]["name"] for d in dags]
    assert "binaryData" not in dags[0]
    assert dags[0]["data"] == {DAGS.name: DAGS.read_text(encoding="utf-8")}


def test_no_copy_of_the_dags_in_the_manifests() -> None:
    copies = sorted(str(p.relative_to(ROOT)) for p in MANIFESTS.rglob("*.py"))
    assert not copies, f"the manifests take {DAGS.relative_to(ROOT)} itself; remove {copies}"


# --- kind ---------------------------------------------------------------------------------


def test_kind_overlay_exposes_the_api_server_on_nodeport_30080(kind_docs: tuple[Doc, ...]) -> None:
    spec = find(kind_docs, "Service", "airflow-api-server")["spec"]
    assert spec["type"] == "NodePort"
    assert [(p["port"], p["nodePort"]) for p in spec["ports"]] == [(8080, 30080)]
    base = find(_render(BASE), "Service", "airflow-api-server")["spec"]
    assert base.get("type", "ClusterIP") == "ClusterIP"


def test_kind_cluster_config() -> None:
    config = yaml.safe_load(KIND_CLUSTER.read_text())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    nodes = config["nodes"]
    assert [n["role"] for n in nodes] == ["control-plane"], "one node: the ledger is shared"
    node = nodes[0]
    assert node["extraMounts"] == [
        {"hostPath": "__HA_BENCH_LEDGER_DIR__", "containerPath": LEDGER_DIR}
    ]
    mappings = node["extraPortMappings"]
    assert all(m.get("listenAddress") == "127.0.0.1" for m in mappings), (
        "the API needs no token: listen on loopback only"
    )
    assert {(m["containerPort"], m["hostPort"]) for m in mappings} == {(30080, 30080)}


# --- sizing -------------------------------------------------------------------------------

# What kind's single node already runs, as requested (cpu, memory): kubeadm's static pods
# (kube-apiserver 250m, kube-controller-manager 200m, kube-scheduler 100m, etcd 100m/100Mi),
# CoreDNS (2 x 100m/70Mi) and kindnet (100m/50Mi, kind's pkg/build/nodeimage/const_cni.go);
# kube-proxy and local-path-provisioner request nothing.
KIND_SYSTEM = {"cpu": 0.25 + 0.2 + 0.1 + 0.1 + 2 * 0.1 + 0.1, "memory": (100 + 2 * 70 + 50) * 2**20}
EVICTION_RESERVE = 100 * 2**20  # the kubelet's default evictionHard memory.available<100Mi
NODES = {
    "2-core 7 GiB (the smallest GitHub Linux runner)": (2.0, 7 * 2**30),
    "4-core 16 GiB (ubuntu-latest for public repositories)": (4.0, 16 * 2**30),
}


@pytest.mark.parametrize("node", NODES, ids=["2-core-7GiB", "4-core-16GiB"])
def test_the_requests_fit_the_runner_at_bring_up_and_with_a_replacement(
    kind_docs: tuple[Doc, ...], node: str
) -> None:
    """The scheduler places a pod only if the requests fit what is left: at bring-up every
    workload plus the migration Job; later (the Job done) every workload plus the largest
    replacement, which exists next to the pod it replaces while that one terminates."""
    from harness.platform.kubernetes.diagnostics import pod_requests, summed_requests

    cpu, memory = NODES[node]
    free = {
        "cpu": cpu - KIND_SYSTEM["cpu"],
        "memory": memory - EVICTION_RESERVE - KIND_SYSTEM["memory"],
    }
    workloads = summed_requests(kind_docs)
    job = pod_requests(find(kind_docs, "Job", "airflow-db-migrate")["spec"]["template"]["spec"])
    largest = {
        r: max(
            pod_requests(t["spec"])[r] for o, t in pod_templates(kind_docs) if o["kind"] != "Job"
        )
        for r in ("cpu", "memory")
    }
    gib = 2**30
    for what, need in (
        ("bring-up", {r: workloads[r] + job[r] for r in free}),
        ("a replacement", {r: workloads[r] + largest[r] for r in free}),
    ):
        assert need["cpu"] <= free["cpu"], (
            f"{node}, {what}: {need['cpu']:.2f} > {free['cpu']:.2f} cores"
        )
        assert need["memory"] <= free["memory"], (
            f"{node}, {what}: {need['memory'] / gib:.2f} > {free['memory'] / gib:.2f} GiB"
        )
