"""Failover experiments: each case is catalogue data; the history decides the verdict.

Cases are ordered so that consecutive cases share a topology (one cluster start each).
"""

from __future__ import annotations

import pytest

from harness.catalogue import build
from harness.experiment import failed_verdicts
from harness.suite import run_in_pool, variant_name

SMOKE = pytest.mark.smoke
CASES = [
    pytest.param("api-server-kill", {"api_servers": 1, "schedulers": 1, "workers": 1},
                 marks=SMOKE, id="api-server-kill-1"),
    pytest.param("scheduler-kill", {"api_servers": 1, "schedulers": 1, "workers": 1},
                 marks=SMOKE, id="scheduler-kill-1"),
    pytest.param("api-server-kill", {"api_servers": 2, "schedulers": 2}, marks=SMOKE,
                 id="api-server-kill-2"),
    pytest.param("scheduler-kill", {"api_servers": 2, "schedulers": 2}, marks=SMOKE,
                 id="scheduler-kill-2"),
    pytest.param("api-server-kill", {"api_servers": 2, "schedulers": 2, "all_replicas": True},
                 id="api-server-kill-all"),
    pytest.param("api-server-pause", {"api_servers": 2, "schedulers": 2},
                 id="api-server-pause-2"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params"), CASES)
def test_experiment(name, params, cluster_pool, run_dir, repeat, seed):
    experiment = build(name, params)
    out = run_dir / variant_name(experiment)
    if params.get("all_replicas"):
        out = out.with_name(out.name + "-all")
    summary = run_in_pool(cluster_pool, experiment, out, repeat=repeat, seed=seed)
    assert summary["repetitions"], "no repetition recorded"
    misses = failed_verdicts(summary)
    assert not misses, "; ".join(misses)
