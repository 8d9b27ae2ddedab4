"""The benchmark DAGs' ledger rows, written by the DAG file under the real Task SDK.

The DAG file imports only under Airflow, so this runs it in the cached Airflow environment
(skipped when that is not installed) with a stand-in task context, once inside a Celery
task that forks the task process (as a Celery worker's pool process does) and once
outside any Celery task.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from harness.core.ledger import PHASES, parse_ledger
from harness.core.topology import DEFAULT_AIRFLOW_VERSION
from harness.platform.airflow_env import cache_root

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "harness" / "observe" / "workload" / "dags" / "ha_bench_dags.py"
PYTHON = cache_root() / "airflow" / DEFAULT_AIRFLOW_VERSION / "bin" / "python"

SCRIPT = """
import importlib.util, os, sys, uuid
from types import SimpleNamespace
spec = importlib.util.spec_from_file_location("ha_bench_dags", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ti = SimpleNamespace(dag_id="ha_bench_short", run_id="r1", task_id="step_1", map_index=None,
                     try_number=1, id=uuid.UUID(int=7))
mod.get_current_context = lambda: {"ti": ti, "params": {"sleep_s": float(sys.argv[2])}}
from celery import Celery
app = Celery("probe", broker="memory://", backend="cache+memory://")
@app.task
def run():
    pid = os.fork()
    if pid == 0:
        mod._work()
        os._exit(0)
    os.waitpid(pid, 0)
run.apply(task_id="celery-task-1")
ti.try_number = 2
mod._work()
"""


@pytest.mark.skipif(not PYTHON.exists(), reason=f"Airflow {DEFAULT_AIRFLOW_VERSION} not installed")
def test_dag_tasks_write_start_heartbeats_end_with_ids(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    env = {"HA_BENCH_LEDGER": str(ledger), "HA_BENCH_LEDGER_HEARTBEAT_S": "0.2",
           "HA_BENCH_REPLICA": "worker-0", "PATH": "/usr/bin:/bin"}  # fmt: skip
    out = subprocess.run([str(PYTHON), "-c", SCRIPT, str(DAGS), "0.7"], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = parse_ledger(ledger.read_bytes())
    assert all(line.endswith("}") for line in ledger.read_text().splitlines())
    assert {r["phase"] for r in rows} <= set(PHASES)
    for try_number, celery_id in ((1, "celery-task-1"), (2, None)):
        mine = [r for r in rows if r["try_number"] == try_number]
        phases = [r["phase"] for r in mine]
        assert phases[0] == "start" and phases[-1] == "end", phases
        assert 2 <= phases.count("heartbeat") <= 4, phases  # 0.7 s body, a beat each 0.2 s
        assert [r["beat"] for r in mine if r["phase"] == "heartbeat"] == list(
            range(1, phases.count("heartbeat") + 1)
        )
        assert mine[0]["heartbeat_s"] == 0.2
        assert {r["celery_task_id"] for r in mine} == {celery_id}
        assert {r["ti_id"] for r in mine} == {str(uuid.UUID(int=7))}
        assert {(r["replica"], r["map_index"]) for r in mine} == {("worker-0", -1)}
        assert len({r["pid"] for r in mine}) == 1
        monos = [r["t_mono"] for r in mine]
        walls = [r["t_wall"] for r in mine]
        assert monos == sorted(monos) and walls == sorted(walls)
        assert 0.6 < monos[-1] - monos[0] < 1.5
    assert rows[0]["pid"] != rows[-1]["pid"]  # the forked task process, then the parent
    json.dumps(rows)  # plain JSON values only
