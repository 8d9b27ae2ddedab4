"""Failover experiments: each case comes from a catalogue file; the history decides.

The cases are the ``cases:`` of the experiment files in ``harness/run/experiments/``. The
``smoke`` profile (default) runs the cases listed for it; ``--profile full`` runs every
case, 5 repetitions each unless ``--repeat`` says otherwise. Cases are grouped so that
consecutive cases share a topology (one cluster start each).
"""

from __future__ import annotations

import pytest

from harness.check.hypothesis import failed_verdicts, invalid_run
from harness.run.catalogue import build, suite_cases
from harness.run.suite import run_in_pool

CASES = [
    pytest.param(name, case.params, id=case.id,
                 marks=[pytest.mark.smoke] if "smoke" in case.profiles else [])
    for name, case in suite_cases()
]  # fmt: skip


@pytest.mark.parametrize(("name", "params"), CASES)
def test_experiment(name, params, request, cluster_pool, run_dir, repeat, seed):
    experiment = build(name, params, platform=cluster_pool.platform)
    out = run_dir / request.node.callspec.id
    summary = run_in_pool(cluster_pool, experiment, out, repeat=repeat, seed=seed)
    assert summary["repetitions"], "no repetition recorded"
    invalid = invalid_run(summary)
    assert not invalid, "invalid run: " + "; ".join(invalid)
    misses = failed_verdicts(summary)
    assert not misses, "; ".join(misses)
