"""check_executions and compose on planted histories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.check.executions import CheckResult, check_executions, compose
from harness.core.history import HistoryWriter, events_frame, read_history


class Story:
    """Builds workload events and ledger rows for runs of ha_bench_short."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.ledger: list[dict[str, Any]] = []

    def ev(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})

    def mark(self, phase: str, run_id: str, task_id: str, try_number: int = 1) -> None:
        self.ledger.append({
            "phase": phase, "dag_id": "ha_bench_short", "run_id": run_id, "task_id": task_id,
            "map_index": -1, "try_number": try_number, "replica": "w0", "hostname": "h",
            "pid": 1, "t_wall": 0.0,
        })  # fmt: skip

    def run(
        self,
        run_id: str,
        *,
        outcome: str = "ok",
        final: str | None = "success",
        tasks: tuple[str, ...] = ("step_1", "step_2"),
        ledger: bool = True,
        task_state: str = "success",
    ) -> None:
        dag = "ha_bench_short"
        self.ev("trigger", phase="invoke", dag_id=dag, run_id=run_id)
        self.ev("trigger", phase=outcome, dag_id=dag, run_id=run_id, status=200)
        if final is None:
            return
        self.ev("run_state", dag_id=dag, run_id=run_id, state="queued")
        self.ev("run_state", dag_id=dag, run_id=run_id, state="running")
        for task_id in tasks:
            self.ev("task_state", dag_id=dag, run_id=run_id, task_id=task_id, map_index=-1,
                    try_number=1, state="running", hostname="h")  # fmt: skip
            if ledger:
                self.mark("start", run_id, task_id)
            if final != "running":
                if ledger and task_state == "success":
                    self.mark("end", run_id, task_id)
                self.ev("task_state", dag_id=dag, run_id=run_id, task_id=task_id, map_index=-1,
                        try_number=1, state=task_state, hostname="h")  # fmt: skip
        if final != "running":
            self.ev("run_state", dag_id=dag, run_id=run_id, state=final)

    def frame(self) -> pd.DataFrame:
        rows = [
            {"t_wall": 1e9 + i, "t_mono": float(i), "source": "workload", "type": "workload", **e}
            for i, e in enumerate(self.events)
        ]
        return events_frame(rows)

    def check(self, **kwargs: Any) -> CheckResult:
        return check_executions(self.frame(), self.ledger, **kwargs)


def clean_story() -> Story:
    s = Story()
    s.run("r1")
    s.run("r2")
    s.run("r3", final="failed", task_state="failed")  # failed task: reported, not invalid
    s.run("r4", outcome="fail", final=None)
    s.run("r5", outcome="info", final=None)  # unknown outcome, never created: not lost
    s.run("r6", outcome="info")  # unknown outcome, created and ran
    return s


def test_clean_history_is_valid(tmp_path: Path) -> None:
    s = clean_story()
    # round-trip through a real history file, as the harness reads it
    with HistoryWriter(tmp_path, "workload") as writer:
        for e in s.events:
            writer.append("workload", **e)
        writer.append("marker", name="run_end")
    result = check_executions(read_history(tmp_path), s.ledger)
    assert result.valid is True, result.problems
    d = result.details
    assert (d["triggered"], d["acknowledged"], d["trigger_failed"], d["trigger_unknown"]) == (
        6, 3, 1, 2
    )  # fmt: skip
    assert d["succeeded_runs"] == 2 and d["failed_runs"] == 1 and d["failed_tasks"] == 2
    assert d["lost_runs"] == d["duplicate_starts"] == d["duplicate_ends"] == d["stuck_runs"] == 0
    assert d["trigger_unknown_materialized"] == 1
    assert result.problems == []


def test_finds_planted_lost_run() -> None:
    s = clean_story()
    s.run("lost", ledger=False)  # marked success, but no task ever wrote its side effect
    s.run("half")
    s.ledger = [r for r in s.ledger if not (r["run_id"] == "half" and r["task_id"] == "step_2"
                                            and r["phase"] == "end")]  # fmt: skip
    result = s.check()
    assert result.valid is False
    ids = result.details["ids"]
    assert ids["lost_runs"] == ["ha_bench_short/lost", "ha_bench_short/half"]
    assert "ha_bench_short/half/step_2#1" in ids["lost_tasks"]
    assert any("lost" in p for p in result.problems)
    expected = s.check(expect_lost=True)
    assert expected.valid is True and expected.details["lost_runs"] == 2


def test_acknowledged_then_not_found_is_lost() -> None:
    s = clean_story()
    s.run("gone", final=None)
    s.ev("poll_error", what="run", dag_id="ha_bench_short", run_id="gone", status=404)
    result = s.check()
    assert result.valid is False and result.details["ids"]["lost_runs"] == ["ha_bench_short/gone"]


def test_finds_planted_duplicate_execution() -> None:
    s = clean_story()
    s.mark("start", "r1", "step_1")  # the same try started a second time
    result = s.check()
    assert result.valid is False
    assert result.details["duplicate_starts"] == 1
    assert result.details["ids"]["duplicate_starts"] == ["ha_bench_short/r1/step_1#1 x2"]
    assert s.check(expect_duplicates=True).valid is True

    s = clean_story()
    s.mark("start", "r2", "step_2", try_number=2)  # a retry after a try that had finished
    s.mark("end", "r2", "step_2", try_number=2)
    result = s.check()
    assert result.valid is False and result.details["duplicate_starts"] == 0
    assert result.details["ids"]["duplicate_ends"] == ["ha_bench_short/r2/step_2 tries=[1, 2]"]


def test_stuck_run_is_unknown() -> None:
    s = clean_story()
    s.run("slow", final="running")  # started, not finished
    s.run("queued", final=None)  # acknowledged, never seen by a poll, nothing ran
    result = s.check()
    assert result.valid is None
    d = result.details
    assert d["stuck_runs"] == 2 and d["stuck_unstarted"] == 1 and d["lost_runs"] == 0
    assert d["ids"]["stuck_unstarted"] == ["ha_bench_short/queued"]
    assert s.check(stuck_is_unknown=False).valid is False
    # invalid wins over unknown
    s.mark("start", "r1", "step_1")
    assert s.check().valid is False


def test_missing_ledger_is_unknown_and_empty_history_valid() -> None:
    s = clean_story()
    assert check_executions(s.frame(), []).valid is None
    empty = check_executions(pd.DataFrame(columns=["t_wall", "t_mono", "source", "type"]), [])
    assert empty.valid is True and empty.details["triggered"] == 0


def test_compose() -> None:
    ok, unknown, bad = (
        CheckResult("a", True, {}, []),
        CheckResult("b", None, {}, ["b?"]),
        CheckResult("c", False, {"n": 1}, ["c!"]),
    )
    assert compose([ok, ok]).valid is True
    assert compose([ok, unknown]).valid is None
    assert compose([ok, unknown, bad]).valid is False
    assert compose([]).valid is True
    merged = compose([unknown, bad])
    assert merged.problems == ["b: b?", "c: c!"] and merged.details["c"] == {"valid": False, "n": 1}
