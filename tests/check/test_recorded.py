"""``ha-bench check`` on a real recorded repetition (tests/data/recorded/), and on a copy
into which one execution was duplicated with an overlapping time."""

import json
import shutil
from pathlib import Path

from harness.cli import main

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded" / "scheduler-kill-2-20261201"


def test_the_recorded_repetition_checks_valid(capsys):
    assert main(["check", str(RECORDED / "rep-1")]) == 0
    assert "valid: 0 finding(s)" in capsys.readouterr().out


def test_a_planted_overlapping_duplicate_is_found_and_named(tmp_path, capsys):
    rep = tmp_path / "rep-1"
    shutil.copytree(RECORDED / "rep-1", rep)
    rows = [json.loads(line) for line in (rep / "ledger.jsonl").read_text().splitlines()]
    victim = next(r for r in rows if r["phase"] == "start")
    same = [r for r in rows if all(r.get(k) == victim.get(k) for k in
            ("dag_id", "run_id", "task_id", "map_index", "try_number", "pid"))]  # fmt: skip
    assert {r["phase"] for r in same} >= {"start", "end"}
    twin = [{**r, "pid": r["pid"] + 100_000, "replica": "worker-twin", "hostname": "twin",
             "t_wall": r["t_wall"] + 0.2, "t_mono": r["t_mono"] + 0.2} for r in same]  # fmt: skip
    with open(rep / "ledger.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in twin)
    assert main(["check", str(rep)]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "overlaps/overlap" in out, out
    assert victim["task_id"] in out and "worker-twin" in out, out
