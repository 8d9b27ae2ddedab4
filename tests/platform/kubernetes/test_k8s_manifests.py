"""Render + patch of the owned cluster's manifests, offline on a rendered fixture."""

from __future__ import annotations

import base64
import copy
import shutil
from typing import Any

import pytest
from test_k8s_fakes import SYNTHETIC

from harness.core.errors import HarnessError
from harness.core.topology import Topology
from harness.platform.kubernetes.manifests import (
    CONFIG_HASH_ANNOTATION,
    DEFAULT_OVERLAY,
    PART_OF,
    image_with_version,
    new_secret,
    parse_documents,
    prepare_manifests,
    render,
)

DOCS = parse_documents((SYNTHETIC / "rendered.yaml").read_text())
TOPOLOGY = Topology(
    airflow_version="3.3.4",
    api_servers=3,
    schedulers=1,
    dag_processors=0,
    workers=4,
    worker_concurrency=8,
    termination_grace_s=12.5,
    airflow_config={"scheduler.task_instance_heartbeat_timeout": "60", "core.parallelism": "64"},
)


def by_name(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


def containers(obj: dict[str, Any]) -> dict[str, str]:
    spec = obj["spec"]["template"]["spec"]
    return {c["name"]: c["image"] for c in spec.get("initContainers", []) + spec["containers"]}


def test_replicas_env_image_and_grace_from_the_topology():
    prepared = prepare_manifests(DOCS, TOPOLOGY)
    objs = by_name(prepared.objects)
    replicas = {
        k: o["spec"]["replicas"] for k, o in objs.items() if "replicas" in o.get("spec", {})
    }
    assert replicas == {
        "StatefulSet/postgres": 1,  # services keep theirs
        "StatefulSet/airflow-worker": 4,
        "Deployment/airflow-api-server": 3,
        "Deployment/airflow-scheduler": 1,
        "Deployment/airflow-dag-processor": 0,
        "Deployment/airflow-triggerer": 1,
    }
    env = objs["ConfigMap/airflow-env"]["data"]
    assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "60"  # override wins
    assert env["AIRFLOW__CORE__PARALLELISM"] == "64"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "8"
    assert env["AIRFLOW__API__WORKERS"] == "1"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"  # the manifests' own stay
    assert containers(objs["Deployment/airflow-api-server"]) == {
        "wait-for-migrations": "apache/airflow:3.3.4-python3.12",
        "chown-ledger": "busybox:1.36.1",  # not an Airflow image: untouched
        "api-server": "apache/airflow:3.3.4-python3.12",
    }
    assert containers(objs["Job/airflow-migrate-database"]) == {
        "migrate": "apache/airflow:3.3.4-python3.12"
    }
    assert containers(objs["StatefulSet/postgres"]) == {"postgres": "postgres:16.4"}
    assert prepared.images["Deployment/airflow-scheduler/scheduler"] == (
        "apache/airflow:3.3.4-python3.12"
    )
    api_spec = objs["Deployment/airflow-api-server"]["spec"]["template"]["spec"]
    worker_spec = objs["StatefulSet/airflow-worker"]["spec"]["template"]["spec"]
    assert api_spec["terminationGracePeriodSeconds"] == 13
    assert worker_spec["terminationGracePeriodSeconds"] == 30  # warm shutdown, like local
    assert (
        "terminationGracePeriodSeconds"
        not in (objs["StatefulSet/postgres"]["spec"]["template"]["spec"])
    )
    assert prepared.workloads == {
        "postgres": ("StatefulSet", "postgres"),
        "api-server": ("Deployment", "airflow-api-server"),
        "scheduler": ("Deployment", "airflow-scheduler"),
        "dag-processor": ("Deployment", "airflow-dag-processor"),
        "triggerer": ("Deployment", "airflow-triggerer"),
        "worker": ("StatefulSet", "airflow-worker"),
    }


def test_objects_are_owned_ordered_and_the_secret_is_never_taken_from_the_manifests():
    prepared = prepare_manifests(DOCS, Topology())
    kinds = [o["kind"] for o in prepared.objects]
    assert kinds[0] == "Namespace" and kinds[1] == "ConfigMap"
    assert kinds.index("Service") < kinds.index("StatefulSet") < kinds.index("Deployment")
    assert kinds[-1] == "Job"
    assert "Secret" not in kinds
    for obj in prepared.objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "airflow-ha-bench"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "ha-bench"
        if "template" in obj.get("spec", {}):  # the owned pod watch selects on it
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "airflow-ha-bench"
    worker = by_name(prepared.objects)["StatefulSet/airflow-worker"]
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kept": "yes", CONFIG_HASH_ANNOTATION: prepared.config_hash}
    assert DOCS[2]["kind"] == "Secret"  # the input is not modified
    assert DOCS[5]["spec"]["replicas"] == 2


def test_changed_config_changes_the_pod_template_hash():
    a = prepare_manifests(DOCS, Topology()).config_hash
    b = prepare_manifests(DOCS, Topology(airflow_config={"core.parallelism": "8"})).config_hash
    assert a != b and a == prepare_manifests(DOCS, Topology()).config_hash


def test_manifest_problems_name_the_fix():
    no_worker = [d for d in DOCS if d["metadata"]["name"] != "airflow-worker"]
    with pytest.raises(HarnessError, match="component=worker"):
        prepare_manifests(no_worker, Topology())
    with pytest.raises(HarnessError, match="no ConfigMap 'airflow-env'"):
        prepare_manifests([d for d in DOCS if d["kind"] != "ConfigMap"], Topology())
    with pytest.raises(HarnessError, match="namespace 'ha-bench', not 'other'"):
        prepare_manifests(DOCS, Topology(), namespace="other")
    latest = copy.deepcopy(DOCS)
    latest[5]["spec"]["template"]["spec"]["containers"][0]["image"] = "apache/airflow:latest"
    with pytest.raises(HarnessError, match="no Airflow version tag"):
        prepare_manifests(latest, Topology())
    # dag_processors=0 needs no dag-processor workload
    no_dp = [d for d in DOCS if d["metadata"]["name"] != "airflow-dag-processor"]
    assert "dag-processor" not in prepare_manifests(no_dp, TOPOLOGY).workloads


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("apache/airflow:3.3.2", "apache/airflow:3.3.4"),
        ("apache/airflow:3.3.2-python3.11", "apache/airflow:3.3.4-python3.11"),
        ("localhost:5001/ha-bench-airflow:3.2.0rc1", "localhost:5001/ha-bench-airflow:3.3.4"),
        ("apache/airflow:3.3.2@sha256:" + "ab" * 32, "apache/airflow:3.3.4"),
        ("redis:7.2.5", None),
        ("docker.io/library/postgres:16", None),
    ],
)
def test_image_with_version(image, expected):
    assert image_with_version(image, "3.3.4") == expected


def test_new_secret_has_fresh_random_keys():
    a, b = new_secret(), new_secret()
    assert set(a["data"]) == {"fernet-key", "jwt-secret", "api-secret-key"}
    assert a["data"] != b["data"]
    fernet = base64.b64decode(a["data"]["fernet-key"])
    assert len(base64.urlsafe_b64decode(fernet)) == 32  # a valid Fernet key
    assert (
        a["metadata"]["labels"]["app.kubernetes.io/part-of"] == PART_OF["app.kubernetes.io/part-of"]
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_render_runs_kubectl_kustomize(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources:\n- all.yaml\n")
    (tmp_path / "all.yaml").write_text((SYNTHETIC / "rendered.yaml").read_text())
    docs = render(tmp_path)
    assert {d["kind"] for d in docs} >= {"Namespace", "Deployment", "StatefulSet", "Job"}
    with pytest.raises(HarnessError, match=r"overlay .* not found"):
        render(tmp_path / "missing")


@pytest.mark.skipif(
    shutil.which("kubectl") is None or not DEFAULT_OVERLAY.is_dir(),
    reason="needs kubectl and manifests/overlays/kind",
)
def test_the_repository_manifests_fit_the_contract():
    """The real overlay renders and patches: the workloads the platform drives, every
    Airflow image on the topology's version, every pod template selectable as owned."""
    prepared = prepare_manifests(render(), Topology(airflow_version="3.3.1", workers=3))
    assert prepared.workloads == {
        "api-server": ("Deployment", "airflow-api-server"),
        "scheduler": ("Deployment", "airflow-scheduler"),
        "dag-processor": ("Deployment", "airflow-dag-processor"),
        "triggerer": ("Deployment", "airflow-triggerer"),
        "worker": ("StatefulSet", "airflow-worker"),
        "postgres": ("StatefulSet", "postgres"),
        "redis": ("StatefulSet", "redis"),
    }
    assert prepared.images and all(i == "apache/airflow:3.3.1" for i in prepared.images.values())
    objs = by_name(prepared.objects)
    assert objs["StatefulSet/airflow-worker"]["spec"]["replicas"] == 3
    assert objs["Service/airflow-api-server"]["spec"]["ports"][0]["nodePort"] == 30080
    for obj in prepared.objects:
        if "template" in obj.get("spec", {}):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "airflow-ha-bench"
