"""The same experiment definitions run on both platforms: the pool picks the platform.

No cluster is started here: the Kubernetes cluster is only constructed (nothing talks to
an API server before ``start()``) and its manifests are rendered and patched offline.
"""

import re
import shutil
from pathlib import Path

import pytest

from harness.platform.base import Cluster
from harness.platform.kubernetes.cluster import KubernetesCluster
from harness.platform.kubernetes.manifests import prepare_manifests, render
from harness.run.catalogue import build, catalogue
from harness.run.suite import ClusterPool

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_experiments_have_no_platform_specific_code():
    for source in EXPERIMENTS.glob("*.py"):
        text = source.read_text()
        assert not re.search(r"harness\.platform\.(local|kubernetes)", text), source.name
        assert "LocalCluster" not in text and "KubernetesCluster" not in text, source.name


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("name", sorted(catalogue()))
def test_every_experiment_maps_onto_the_kubernetes_platform(name):
    experiment = build(name)
    pool = ClusterPool("kubernetes", kube_context="kind-ha-bench")
    topology = pool.topology_for(experiment)
    cluster = pool._new_cluster(topology, None)
    assert isinstance(cluster, KubernetesCluster) and isinstance(cluster, Cluster)
    assert cluster.topology == topology
    prepared = prepare_manifests(render(), topology)
    replicas = {o["metadata"]["name"]: o["spec"].get("replicas") for o in prepared.objects
                if o["kind"] in ("Deployment", "StatefulSet")}  # fmt: skip
    assert replicas["airflow-api-server"] == topology.api_servers
    assert replicas["airflow-scheduler"] == topology.schedulers
    assert replicas["airflow-worker"] == topology.workers
    env = next(o for o in prepared.objects if o["kind"] == "ConfigMap"
               and o["metadata"]["name"] == "airflow-env")["data"]  # fmt: skip
    for key, value in topology.airflow_env().items():  # every config override goes along
        assert env[key] == value
