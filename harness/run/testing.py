"""pytest fixtures for a local cluster; load with ``pytest_plugins = ["harness.run.testing"]``.

The cluster is torn down whatever ends the test: normal exit, an exception, Ctrl-C, or
SIGTERM to pytest (turned into an unwinding exception while a cluster is up).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.core.cleanup import unwind_on_termination
from harness.core.topology import Topology
from harness.observe.workload import DAGS_DIR
from harness.platform.local.cluster import LocalCluster

SMALL = Topology(api_servers=1, schedulers=1, dag_processors=0, triggerers=0, workers=1)
"""The smallest useful cluster, for tests that only need one of each core part."""


@contextlib.contextmanager
def running_cluster(topology: Topology, logs_dir: Path | None = None) -> Iterator[LocalCluster]:
    with (
        unwind_on_termination(),
        LocalCluster(topology, logs_dir=logs_dir, dags_dir=DAGS_DIR) as cluster,
    ):
        yield cluster


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[[Topology], LocalCluster]]:
    """Start clusters of any topology inside a test; all are stopped at its end."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(unwind_on_termination())

        def start(topology: Topology) -> LocalCluster:
            logs = tmp_path / f"logs-{len(stack._exit_callbacks)}"
            return stack.enter_context(LocalCluster(topology, logs_dir=logs, dags_dir=DAGS_DIR))

        yield start


@pytest.fixture(scope="session")
def ha_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The default reference HA topology, shared by a session's tests."""
    logs = tmp_path_factory.mktemp("ha-cluster-logs")
    with running_cluster(Topology(), logs_dir=logs) as cluster:
        yield cluster
