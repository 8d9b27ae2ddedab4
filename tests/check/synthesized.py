"""Synthesized task histories: workload, fault and marker events plus ledger rows.

Nothing here was recorded from a cluster. :class:`Synth` builds a repetition event by
event (seconds from an arbitrary origin); :func:`synthesized_repetition` is the small
worker-pause repetition shipped as ``tests/data/check/synthesized-run`` (regenerate it with
``python tests/check/synthesized.py``): runs of ``ha_bench_short`` on two workers, a
``ha_bench_long`` victim on worker-0, worker-0 paused for 8 s while the victim runs.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from harness.core.history import HistoryWriter, events_frame, finalize

T0 = 1_800_000_000.0  # t_wall of second 0
M0 = 5_000.0  # t_mono of second 0
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "check"
RUN = DATA / "synthesized-run"
EXPERIMENT = "worker-pause-synthesized"


class Synth:
    """A synthesized repetition: events (by source) and ledger rows, times in seconds."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.ledger: list[dict[str, Any]] = []
        self._pid = 4000

    def event(self, s: float, type: str, source: str = "workload", **fields: Any) -> None:
        self.events.append({"t_wall": T0 + s, "t_mono": M0 + s, "source": source,
                            "type": type, **fields})  # fmt: skip

    # workload events
    def trigger(self, s: float, dag: str, run: str, outcome: str = "ok") -> None:
        self.event(s, "workload", event="trigger", phase="invoke", dag_id=dag, run_id=run)
        self.event(s + 0.02, "workload", event="trigger", phase=outcome, dag_id=dag, run_id=run,
                   status=200 if outcome == "ok" else None)  # fmt: skip

    def run_state(self, s: float, dag: str, run: str, state: str) -> None:
        self.event(s, "workload", event="run_state", dag_id=dag, run_id=run, state=state)

    def task_state(
        self, s: float, dag: str, run: str, task: str, state: str | None, try_number: int,
        hostname: str = "vm",
    ) -> None:  # fmt: skip
        self.event(s, "workload", event="task_state", dag_id=dag, run_id=run, task_id=task,
                   map_index=-1, state=state, try_number=try_number,
                   hostname=hostname)  # fmt: skip

    # ledger rows
    def row(self, s: float, phase: str, dag: str, run: str, task: str, try_number: int,
            pid: int, replica: str, hostname: str = "vm", **fields: Any) -> None:  # fmt: skip
        self.ledger.append({
            "phase": phase, "dag_id": dag, "run_id": run, "task_id": task, "map_index": -1,
            "try_number": try_number, "ti_id": f"ti-{run}-{task}-{try_number}",
            "celery_task_id": f"celery-{run}-{task}-{try_number}", "replica": replica,
            "hostname": hostname, "pid": pid, "t_wall": T0 + s, "t_mono": M0 + s, **fields,
        })  # fmt: skip

    def execution(
        self, dag: str, run: str, task: str, try_number: int, start: float,
        end: float | None = None, *, alive_until: float | None = None,
        replica: str = "worker-0", pid: int | None = None, heartbeat_s: float = 2.0,
        paused: tuple[float, float] | None = None, outcome: str = "end",
    ) -> int:  # fmt: skip
        """Rows of one execution: start, a heartbeat every ``heartbeat_s`` (none while
        ``paused``), and ``outcome`` at ``end`` (none if ``end`` is None: killed after its
        last heartbeat before ``alive_until``). Returns its pid."""
        if pid is None:
            self._pid += 1
            pid = self._pid
        ids = (dag, run, task, try_number, pid, replica)
        self.row(start, "start", *ids, heartbeat_s=heartbeat_s)
        stop = end if end is not None else alive_until
        assert stop is not None
        beat, t = 0, start + heartbeat_s
        while t < stop:
            if paused is None or not paused[0] <= t < paused[1]:
                beat += 1
                self.row(t, "heartbeat", *ids, beat=beat)
            t += heartbeat_s
        if end is not None:
            self.row(end, outcome, *ids)
        return pid

    # a whole run of ha_bench_short, on the API and in the ledger
    def short_run(self, s: float, run: str, replica: str = "worker-0",
                  delay: tuple[float, float] = (0.0, 0.0),
                  paused: tuple[float, float] | None = None) -> None:  # fmt: skip
        dag = "ha_bench_short"
        self.trigger(s, dag, run)
        self.run_state(s + 0.5, dag, run, "running")
        t = s + 0.5
        for task, extra in zip(("step_1", "step_2"), delay, strict=True):
            self.task_state(t, dag, run, task, "queued", 1)
            self.task_state(t + 0.5, dag, run, task, "running", 1)
            self.execution(dag, run, task, 1, t + 0.6, t + 1.6 + extra, replica=replica,
                           paused=paused)  # fmt: skip
            self.task_state(t + 2.0 + extra, dag, run, task, "success", 1)
            t += 2.0 + extra
        self.run_state(t + 0.1, dag, run, "success")

    def fault(self, s: float, done: float, op: str, target: str, op_id: int) -> None:
        self.event(s, "fault", "cluster", op=op, target=target, phase="invoke", op_id=op_id)
        self.event(done, "fault", "cluster", op=op, target=target, phase="ok", op_id=op_id,
                   detail={"signalled": 1})  # fmt: skip

    def marker(self, s: float, name: str, detail: Any = None) -> None:
        self.event(s, "marker", "cluster", name=name, detail=detail)

    def frame(self) -> pd.DataFrame:
        return events_frame([dict(e) for e in self.events])

    def write(self, rep_dir: Path) -> Path:
        """``rep_dir/history/<source>.jsonl``, ``history.parquet`` and ``ledger.jsonl``."""
        writers: dict[str, HistoryWriter] = {}
        for e in sorted(self.events, key=lambda e: e["t_mono"]):
            e = dict(e)
            source = e.pop("source")
            writer = writers.get(source) or writers.setdefault(
                source, HistoryWriter(rep_dir, source)
            )
            writer.append(e.pop("type"), t=(e.pop("t_wall"), e.pop("t_mono")), **e)
        for w in writers.values():
            w.close()
        finalize(rep_dir)
        (rep_dir / "ledger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.ledger))
        return rep_dir


VICTIM = {"dag_id": "ha_bench_long", "run_id": "victim", "task_id": "long_sleep",
          "replica": "worker-0"}  # fmt: skip


def synthesized_repetition() -> Synth:
    """The shipped synthesized repetition (see the module docstring): valid, no finding."""
    s = Synth()
    s.marker(0.0, "baseline_start")
    pause = (14.0, 22.0)
    for i in range(8):  # every 3 s, alternating workers; worker-1 only while 0 is paused
        replica = f"worker-{i % 2}" if not 12.0 < 3.0 * i < 22.0 else "worker-1"
        # r5's step_1 runs on worker-0 when the pause hits: it ends 8 s late
        delay = (8.0, 0.0) if i == 4 else (0.0, 0.0)
        replica = "worker-0" if i == 4 else replica
        s.short_run(3.0 * i, f"r{i + 1}", replica=replica, delay=delay, paused=pause)
    # the victim: ha_bench_long on worker-0, paused 14..22 s, ends late at 35 s
    dag, run, task = VICTIM["dag_id"], VICTIM["run_id"], VICTIM["task_id"]
    s.trigger(6.0, dag, run)
    s.run_state(6.5, dag, run, "running")
    s.task_state(6.5, dag, run, task, "queued", 1)
    s.task_state(7.0, dag, run, task, "running", 1)
    pid = s.execution(dag, run, task, 1, 7.2, 35.0, replica="worker-0", paused=pause)
    s.marker(7.3, "victim_started", {**VICTIM, "pid": pid, "try_number": 1})
    s.task_state(35.5, dag, run, task, "success", 1)
    s.run_state(35.6, dag, run, "success")
    s.marker(13.9, "fault_start", {"offset_s": 1.0, "seed": 0})
    s.fault(14.0, 14.05, "pause", "worker-0", 1)
    s.fault(22.0, 22.05, "resume", "worker-0", 2)
    for k in range(190):  # LB probes every 0.2 s, all answered (the pause hits a worker)
        s.event(0.2 * k, "probe", "prober", target="lb", endpoint="/api/v2/version", ok=True,
                outcome="ok", status=200, latency_s=0.004 + 0.001 * (k % 3))  # fmt: skip
    s.marker(30.0, "recovered")
    s.marker(36.0, "run_end")
    s.event(38.0, "workload", event="drain", phase="ok", outstanding=0, detail=[])
    s.marker(38.1, "drain_end", {"drained": True})
    return s


def write_synthesized_run(dst: Path = RUN) -> Path:
    """``dst/<EXPERIMENT>/{summary.json, rep-1/}``: the synthesized repetition as a run."""
    from harness.check.checkers import check_repetition
    from harness.core.results import write_summary

    if dst.exists():
        shutil.rmtree(dst)
    s = synthesized_repetition()
    rep = s.write(dst / EXPERIMENT / "rep-1")
    check = check_repetition(s.frame(), s.ledger)
    execution = json.loads(json.dumps({"valid": check.valid, "problems": check.problems,
                                       **check.details}, default=str))  # fmt: skip
    figures = {
        "repetition": 1, "seed": 0, "valid": True, "invalid_reasons": [],
        "fault": [{"op": "pause", "target": "worker-0", "phase": "ok", "t_wall": T0 + 14.05}],
        "downtime_s": 0.0, "recovery_s": 8.0, "failed_tasks": 0, "outages": [],
        "victim": {**VICTIM, "final_state": "success"}, "executions": execution,
    }  # fmt: skip
    summary = {
        "experiment": "worker-pause", "params": {"workers": 2, "hold_s": 8.0},
        "repetitions": [figures],
        "verdicts": {"executions": {"verdict": "confirmed", "why": "synthesized",
                                    "gate": True, "measured": [[]]}},
        "experiment_definition": {"name": "worker-pause", "description": (
            "SYNTHESIZED (not recorded): worker-0 paused 8 s while the victim runs on it"),
            "fault": {"op": "pause", "target": "worker-0", "hold_s": 8.0},
            "expect_lost": False, "expect_duplicates": False},
        "metadata": {"airflow_version": "3.3.2", "platform": "synthesized",
                     "topology": {"api_servers": 1, "schedulers": 1, "workers": 2}},
    }  # fmt: skip
    write_summary(dst / EXPERIMENT / "summary.json", summary)
    assert rep.is_dir()
    return dst


if __name__ == "__main__":
    print(write_synthesized_run(Path(sys.argv[1]) if len(sys.argv) > 1 else RUN))
