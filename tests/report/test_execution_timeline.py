"""The execution timeline figure and its place in the report, on the SYNTHESIZED
worker-pause repetition (``tests/data/check/synthesized-run``: no recorded repetition
shipped with the tests kept its ledger)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image
from reportdata import SMOKE_RUN, copy_run

from harness.check.checkers import check_repetition
from harness.check.history import victim
from harness.cli import main
from harness.report.plots import execution_timeline, execution_timeline_figure, save_figure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "check"))
from synthesized import EXPERIMENT, RUN, Synth, synthesized_repetition

STEM = f"{EXPERIMENT}-rep-1-executions"


def _plant_duplicate(run: Path) -> None:
    """worker-1 runs the victim's try 1 as well, 16..30 s, while worker-0 is paused."""
    extra = Synth()
    extra.execution("ha_bench_long", "victim", "long_sleep", 1, 16.0, 30.0,
                    replica="worker-1", pid=9999)  # fmt: skip
    with (run / EXPERIMENT / "rep-1" / "ledger.jsonl").open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in extra.ledger)


def test_rows_are_the_victim_the_findings_and_what_the_fault_hit() -> None:
    s = synthesized_repetition()
    df = s.frame()
    timeline = execution_timeline(df, s.ledger, check_repetition(df, s.ledger), victim=victim(df))
    assert timeline is not None
    rows = {r.label: r.why for r in timeline.rows}
    assert rows["long victim long_sleep"] == ["victim", "at fault"]
    assert rows["short r5 step_1"] == ["at fault"]  # running on worker-0 when it was paused
    assert set(rows) == {"long victim long_sleep", "short r5 step_1", "short r6 step_1",
                         "short r6 step_2", "short r7 step_1", "short r7 step_2"}  # fmt: skip
    assert timeline.task_instances == 17 and timeline.omitted == 0
    assert timeline.replicas == ["worker-0", "worker-1"]
    (pause,) = timeline.faults
    assert pause.held and timeline.t0 == pause.start
    short = execution_timeline(df, s.ledger, victim=victim(df), max_rows=2)
    assert short is not None and len(short.rows) == 2 and short.omitted == 4
    assert execution_timeline(df, []) is None  # no ledger: no figure


def test_findings_are_marked(tmp_path: Path) -> None:
    s = synthesized_repetition()
    s.execution("ha_bench_long", "victim", "long_sleep", 1, 16.0, 30.0, replica="worker-1",
                pid=9999)  # fmt: skip
    s.task_state(36.0, "ha_bench_short", "r6", "step_2", "failed", 1)  # a false zombie
    df = s.frame()
    check = check_repetition(df, s.ledger)
    timeline = execution_timeline(df, s.ledger, check, victim=victim(df))
    assert timeline is not None
    rows = {r.label: r.why for r in timeline.rows}
    assert rows["long victim long_sleep"][:3] == ["victim", "same_try_twice", "ended_twice"]
    assert "zombie_false_positive" in rows["short r6 step_2"]
    assert {f[2] for f in timeline.flagged} == {4017, 9999}  # both executions outlined
    ((key, start, until),) = timeline.overlaps
    assert key[1:3] == ("victim", "long_sleep") and until - start == pytest.approx(14.0)
    assert [m[2] for m in timeline.marks] == ["zombie_false_positive"]
    png, svg = save_figure(execution_timeline_figure(timeline, title="t"), tmp_path, "x")
    with Image.open(png) as image:
        assert image.width >= 1000
    assert "9999" in svg.read_text()  # the duplicate's pid is written on its bar


def test_the_report_shows_a_timeline_per_repetition_with_a_ledger(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    assert main(["report", str(run)]) == 0
    md = (run / "report.md").read_text()
    assert f"#### Task executions: {EXPERIMENT}" in md
    assert "task history (ledger and API states, `ha-bench check`): **valid**, 0 finding(s)." in md
    assert f"figures/{STEM}.png" in md
    html = (run / "report.html").read_text()
    assert 'id="task-executions-worker-pause-synthesized"' in html
    for ext in ("png", "svg"):
        assert (run / "figures" / f"{STEM}.{ext}").stat().st_size > 5000

    _plant_duplicate(run)
    assert main(["report", str(run)]) == 0
    md = (run / "report.md").read_text()
    assert "**invalid**, 3 finding(s): `duplicates/same_try_twice: " in md
    assert "`overlaps/overlap: ha_bench_long/victim/long_sleep: try 1 pid 4017@vm" in md

    (run / EXPERIMENT / "rep-1" / "ledger.jsonl").unlink()  # no ledger: no timeline
    assert main(["report", str(run)]) == 0
    assert "Task executions" not in (run / "report.md").read_text()
    assert not (run / "figures" / f"{STEM}.png").exists()


def test_recorded_runs_without_ledgers_have_no_timeline(tmp_path: Path) -> None:
    run = copy_run(tmp_path / "smoke", SMOKE_RUN)
    assert main(["report", str(run)]) == 0
    assert "Task executions" not in (run / "report.md").read_text()
    assert not list((run / "figures").glob("*-executions.png"))
