"""Failover experiments: each case is catalogue data; the history decides the verdict.

The ``smoke`` profile (default) runs the cases marked smoke; ``--profile full`` runs every
case, 5 repetitions each unless ``--repeat`` says otherwise. Cases are ordered so that
consecutive cases share a topology (one cluster start each).
"""

from __future__ import annotations

import pytest

from harness.run.catalogue import build
from harness.run.runner import failed_verdicts
from harness.run.suite import run_in_pool

SMOKE = pytest.mark.smoke
MINIMAL = {"api_servers": 1, "schedulers": 1, "workers": 1}
CASES = [
    # the minimal cluster: one of everything
    pytest.param("api-server-kill", MINIMAL, marks=SMOKE, id="api-server-kill-1"),
    pytest.param("scheduler-kill", MINIMAL, marks=SMOKE, id="scheduler-kill-1"),
    # the reference HA topology (2 api-servers, 2 schedulers, 2 workers, 1 triggerer)
    pytest.param("api-server-kill", {}, marks=SMOKE, id="api-server-kill-2"),
    pytest.param("scheduler-kill", {}, marks=SMOKE, id="scheduler-kill-2"),
    pytest.param("api-server-kill", {"all_replicas": True}, id="api-server-kill-all"),
    pytest.param("api-server-pause", {}, id="api-server-pause-2"),
    pytest.param("dag-processor-kill", {}, id="dag-processor-kill"),
    pytest.param("triggerer-kill", {}, id="triggerer-kill"),
    pytest.param("postgres-restart", {}, id="postgres-restart"),
    # the same topology with shortened task heartbeat timeout (an Airflow config override)
    pytest.param("worker-kill", {}, id="worker-kill"),
    pytest.param("worker-terminate", {}, id="worker-terminate"),
    pytest.param("worker-kill", {"retries": 1}, id="worker-kill-retry"),
    # ... and with a shortened task_queued_timeout
    pytest.param("redis-restart", {}, id="redis-restart"),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_experiment(name, params, request, cluster_pool, run_dir, repeat, seed):
    experiment = build(name, params)
    out = run_dir / request.node.callspec.id
    summary = run_in_pool(cluster_pool, experiment, out, repeat=repeat, seed=seed)
    assert summary["repetitions"], "no repetition recorded"
    misses = failed_verdicts(summary)
    assert not misses, "; ".join(misses)
