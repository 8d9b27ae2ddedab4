"""A user's own experiment file and topology file, run end to end by ``ha-bench run``.

Real processes (Airflow, PostgreSQL, Redis, HAProxy): a short kill of the only api-server
on a one-of-each cluster whose restart policy, grace and Airflow config come from a
topology file.
"""

import json
import textwrap

import pytest

from harness.cli import main

pytestmark = pytest.mark.cluster

EXPERIMENT = textwrap.dedent("""\
    schema_version: 1
    name: my-short-kill
    summary: a user's file, kept short
    params:
      settle: {default: 2.0, help: seconds of steady LB after the fault}
    description: "SIGKILL api-server-0 of {{ api_servers }}"
    fault: {op: kill, target: api-server-0}
    warmup_s: 1.0
    baseline_s: 2.0
    fault_window_s: 0.5
    settle_s: "{{ settle }}"
    drain_timeout_s: 20.0
    hypotheses:
      - {metric: downtime_s, op: ">", value: 0.0, why: the only api-server is gone}
      - when: "api_servers > 1"
        metric: downtime_s
        op: "<="
        value: 1.0
""")

TOPOLOGY = textwrap.dedent("""\
    api_servers: 1
    schedulers: 1
    workers: 1
    triggerers: 0
    restart: {initial_backoff_s: 0.5, max_backoff_s: 5, stable_after_s: 20}
    termination_grace_s: 5
    airflow_config: {core.parallelism: "16"}
""")


def test_a_users_file_runs_end_to_end_on_a_topology_file(tmp_path, capsys):
    experiment, topology = tmp_path / "mine.yaml", tmp_path / "small.yaml"
    experiment.write_text(EXPERIMENT)
    topology.write_text(TOPOLOGY)
    out = tmp_path / "out"
    code = main(["run", str(experiment), "--topology", str(topology), "--set", "settle=1.5",
                 "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["experiment"] == "my-short-kill"
    assert summary["params"]["api_servers"] == 1  # the topology file's count
    assert summary["params"]["settle"] == 1.5
    assert list(summary["verdicts"]) == ["downtime_s > 0.0", "executions"]
    assert summary["verdicts"]["downtime_s > 0.0"]["verdict"] == "confirmed"
    setup = summary["metadata"]["topology"]
    assert setup["restart"]["initial_backoff_s"] == 0.5 and setup["termination_grace_s"] == 5
    assert setup["airflow_config"] == {"core.parallelism": "16"}
    assert setup["triggerers"] == 0
    assert (out / "rep-1" / "history.parquet").exists() and (out / "report.html").exists()
    assert "downtime_s > 0.0: confirmed" in printed.out
