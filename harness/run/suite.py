"""Run experiments on a platform, reusing one cluster per topology, into a results run dir."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.topology import Topology
from harness.run.catalogue import PLATFORMS
from harness.run.model import Experiment
from harness.run.runner import run_experiment


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


class ClusterPool(contextlib.AbstractContextManager):
    """One running cluster at a time, started for a topology and reused while it matches."""

    def __init__(
        self,
        platform: str = "local",
        airflow_version: str | None = None,
        logs_root: Path | None = None,
        log=None,
        *,
        kube_context: str | None = None,
        allowed_contexts: tuple[str, ...] = (),
        base_topology: Topology | None = None,
    ) -> None:
        """``base_topology`` (``--topology FILE``) is what each experiment's overrides
        apply to; the reference topology if ``None``."""
        if platform not in PLATFORMS:
            raise HarnessError(f"unknown platform {platform!r}", fix="use local or kubernetes")
        if platform == "kubernetes":
            from harness.platform.kubernetes.safety import (
                allowed_contexts as allowed,
            )
            from harness.platform.kubernetes.safety import (
                current_context,
                require_allowed_context,
            )

            # refused here, before any cluster object (let alone a mutating call) exists
            self.allowed = allowed(allowed_contexts)
            self.kube_context = require_allowed_context(
                kube_context or current_context(), self.allowed
            )
        self.platform = platform
        self.base_topology = base_topology or Topology()
        self.airflow_version = airflow_version
        self.logs_root = logs_root
        self.log = log
        self._cluster = None
        self._topology: Topology | None = None
        self._count = 0

    def topology_for(self, experiment: Experiment) -> Topology:
        changes = dict(experiment.topology)
        if self.airflow_version:
            changes["airflow_version"] = self.airflow_version
        return self.base_topology.with_overrides(**changes)

    def _new_cluster(self, topology: Topology, logs: Path | None):
        if self.platform == "kubernetes":
            from harness.platform.kubernetes.cluster import KubernetesCluster
            from harness.platform.kubernetes.kind import default_ledger_dir, kind_name_of

            kind = kind_name_of(self.kube_context)
            return KubernetesCluster(
                topology,
                context=self.kube_context,
                allowed_contexts=tuple(self.allowed),
                ledger_dir=default_ledger_dir(kind) if kind else None,
                log=self.log,
                logs_dir=logs,
            )
        from harness.observe.workload import DAGS_DIR
        from harness.platform.local.cluster import LocalCluster

        return LocalCluster(topology, logs_dir=logs, log=self.log, dags_dir=DAGS_DIR)

    def get(self, experiment: Experiment, *, fresh: bool = False):
        """The running cluster for ``experiment``'s topology (started on first use; a new
        one when ``fresh``)."""
        topology = self.topology_for(experiment)
        if self._cluster is not None and topology == self._topology and not fresh:
            return self._cluster
        self.close()
        self._count += 1
        logs = self.logs_root / f"cluster-{self._count}-logs" if self.logs_root else None
        cluster = self._new_cluster(topology, logs)
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        self._cluster, self._topology = cluster, topology
        return cluster

    def close(self) -> None:
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            cluster.stop()

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_in_pool(
    pool: ClusterPool, experiment: Experiment, out_dir: Path, *, repeat: int, seed: int = 0,
    max_reruns: int | None = None, fresh_cluster: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Run ``experiment`` on the pool's cluster (a new cluster per repetition with
    ``fresh_cluster``)."""
    return run_experiment(experiment, lambda: pool.get(experiment, fresh=fresh_cluster),
                          out_dir, repeat=repeat, seed=seed, max_reruns=max_reruns,
                          log=pool.log)  # fmt: skip
