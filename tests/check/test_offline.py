"""``ha-bench check DIR`` on recorded repetitions.

No repetition shipped with the tests has a ledger (``tests/data/smoke-run-1`` kept only
its histories), so the repetition checked here is the SYNTHESIZED one in
``tests/data/check/synthesized-run`` (written by ``python tests/check/synthesized.py``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reportdata import SMOKE_RUN
from synthesized import EXPERIMENT, RUN, Synth

from harness.check.offline import check_path, find_repetitions
from harness.cli import main

REP = RUN / EXPERIMENT / "rep-1"


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("path", [RUN, RUN / EXPERIMENT, REP])
def test_the_synthesized_repetition_is_valid(path: Path, capsys) -> None:
    assert main(["check", str(path)]) == 0
    (line,) = _lines(capsys)
    assert line.startswith(f"{REP}: valid: 0 finding(s); 17 executions of 17 task instances")


def test_a_duplicated_overlapping_execution_is_found_and_named(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    extra = Synth()  # worker-1 runs the victim's try 1 too, while worker-0 is paused
    pid = extra.execution("ha_bench_long", "victim", "long_sleep", 1, 16.0, 30.0,
                          replica="worker-1", pid=9999)  # fmt: skip
    ledger = run / EXPERIMENT / "rep-1" / "ledger.jsonl"
    with ledger.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in extra.ledger)
    assert main(["check", str(run)]) == 1
    head, *findings = _lines(capsys)
    assert "INVALID: 3 finding(s)" in head
    overlap = next(x for x in findings if x.strip().startswith("overlaps/overlap:"))
    assert "ha_bench_long/victim/long_sleep" in overlap and f"pid {pid}@vm (worker-1)" in overlap
    assert "(worker-0)" in overlap and "ran at the same time for 14.000 s" in overlap
    assert any(x.strip().startswith("duplicates/same_try_twice: ha_bench_long/victim/long_sleep#1")
               for x in findings)  # fmt: skip
    # an experiment that expects duplicates reports them without failing
    summary = run / EXPERIMENT / "summary.json"
    data = json.loads(summary.read_text())
    data["experiment_definition"]["expect_duplicates"] = True
    summary.write_text(json.dumps(data))
    assert main(["check", str(run / EXPERIMENT / "rep-1")]) == 0
    assert "valid (expect_duplicates): 3 finding(s)" in _lines(capsys)[0]


def test_missing_evidence_is_exit_3(tmp_path: Path, capsys) -> None:
    assert main(["check", str(SMOKE_RUN)]) == 3  # recorded, but without ledgers
    lines = _lines(capsys)
    assert len(lines) == 4 and all("MISSING EVIDENCE: no ledger.jsonl" in x for x in lines)
    rep = tmp_path / "exp" / "rep-1"
    rep.mkdir(parents=True)
    shutil.copy(REP / "ledger.jsonl", rep)
    assert main(["check", str(tmp_path / "exp")]) == 3
    assert "no history.parquet or history/*.jsonl" in _lines(capsys)[0]


def test_an_unknown_verdict_is_exit_3_with_its_reason(tmp_path: Path, capsys) -> None:
    rep = tmp_path / "rep-1"
    shutil.copytree(REP, rep)
    (rep / "ledger.jsonl").write_text("")  # runs succeeded, the ledger is empty
    assert main(["check", str(rep)]) == 3
    lines = _lines(capsys)
    assert ": unknown: 0 finding(s)" in lines[0]
    assert any("unknown: lost: ledger is empty" in x for x in lines[1:])


def test_not_a_run_is_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path)]) == 2
    assert "holds no recorded repetition" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "nope")]) == 2


def test_find_repetitions_orders_by_number(tmp_path: Path) -> None:
    for n in (10, 2, 1):
        (tmp_path / "exp" / f"rep-{n}").mkdir(parents=True)
    assert [p.name for p in find_repetitions(tmp_path)] == ["rep-1", "rep-2", "rep-10"]
    assert [c.verdict for c in check_path(tmp_path / "exp")] == ["MISSING EVIDENCE"] * 3


def test_the_command_line(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "harness.cli", "check", str(RUN),
                          "--stuck-after", "5"], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    # with a 5 s bound the victim (running 28 s) and r5's step_1 (paused, 9.5 s) are stuck
    assert out.returncode == 1, out.stderr
    stuck = [x for x in out.stdout.splitlines() if "stuck/stuck:" in x]
    assert any("ha_bench_long/victim/long_sleep#1 running for 28.5 s" in x for x in stuck)


def test_the_stuck_bound_defaults_to_the_experiments_own(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    summary = run / EXPERIMENT / "summary.json"
    data = json.loads(summary.read_text()) if summary.exists() else {}
    data.setdefault("experiment_definition", {})["stuck_after_s"] = 5.0
    summary.write_text(json.dumps(data))
    assert main(["check", str(run)]) == 1  # the victim (28 s running) is stuck past 5 s
    assert any("running for 28.5 s (> 5 s)" in x for x in _lines(capsys))
    assert main(["check", str(run), "--stuck-after", "120"]) == 0  # given: it wins
