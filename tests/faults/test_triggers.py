"""State-triggered faults: each condition fires within 1 s of the state it waits for, on
real files and a real (small, fake-Airflow) HTTP server."""

import json
import os
import subprocess
import threading
import time

from jsonserver import JsonHandler, serving

from harness.core.ledger import parse_ledger
from harness.faults.triggers import LedgerCondition, LogCondition, TaskStateCondition, wait_for

BOUND_S = 1.0


def _ledger(path):
    def mark():
        return path.stat().st_size if path.exists() else 0

    def since(at):
        with open(path, "rb") as f:
            f.seek(at)
            return parse_ledger(f.read())

    return mark, since


def _append_later(path, line: str, after_s: float) -> list[float]:
    written: list[float] = []

    def write():
        time.sleep(after_s)
        with open(path, "a") as f:
            f.write(line + "\n")
        written.append(time.time())

    threading.Thread(target=write, daemon=True).start()
    return written


def test_a_ledger_row_fires_the_condition_within_a_second(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps({"phase": "start", "dag_id": "old"}) + "\n")  # before arming
    condition = LedgerCondition(*_ledger(path), {"phase": "start", "dag_id": "ha_bench_long"})
    condition.arm()
    written = _append_later(path, json.dumps({"phase": "start", "dag_id": "ha_bench_long",
                                              "task_id": "long_sleep"}), 0.6)  # fmt: skip
    met = wait_for(condition, timeout_s=10)
    assert met is not None and met.evidence["ledger_row"]["task_id"] == "long_sleep"
    assert 0 <= met.t_wall - written[0] < BOUND_S


def test_rows_written_before_arming_do_not_count(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps({"phase": "start", "dag_id": "d"}) + "\n")
    condition = LedgerCondition(*_ledger(path), {"phase": "start"})
    condition.arm()
    assert wait_for(condition, timeout_s=0.3) is None


def test_a_log_line_written_by_another_process_fires_the_condition(tmp_path):
    log = tmp_path / "scheduler-0.log"
    log.write_text("Sending TaskInstanceKey(dag_id='old') to CeleryExecutor\n")
    condition = LogCondition(log, r"Sending TaskInstanceKey\(dag_id='ha_bench_long'",
                             replica="scheduler-0")  # fmt: skip
    condition.arm()
    started = time.time()
    line = "Sending TaskInstanceKey(dag_id='ha_bench_long') to CeleryExecutor"
    script = 'sleep 0.5; printf "noise\\n%s\\n" "$1" >> "$2"'
    subprocess.Popen(["sh", "-c", script, "sh", line, str(log)])
    met = wait_for(condition, timeout_s=10)
    assert met is not None and "ha_bench_long" in met.evidence["log_line"]
    assert met.evidence["replica"] == "scheduler-0"
    written = os.stat(log).st_mtime
    assert met.t_wall - started >= 0.4 and met.t_wall - written < BOUND_S


def test_a_half_written_line_waits_for_its_end(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("")
    condition = LogCondition(log, r"ready$")
    condition.arm()
    with open(log, "a") as f:
        f.write("almost ready")
    assert condition.check() is None
    with open(log, "a") as f:
        f.write("\n")
    assert condition.check() is not None


class _TaskInstances(JsonHandler):
    states: list[dict] = []

    def do_GET(self):
        state = self.path.split("state=")[1].split("&")[0]
        rows = [t for t in self.states if t["state"] == state]
        self.reply(200, {"task_instances": rows, "total_entries": len(rows)})


def test_a_task_instance_entering_a_state_fires_the_condition():
    _TaskInstances.states = [{"dag_id": "d", "dag_run_id": "r0", "task_id": "t", "try_number": 1,
                              "state": "queued"}]  # fmt: skip
    with serving(_TaskInstances) as url:
        condition = TaskStateCondition(url, "d", "queued", task_id="t")
        condition.arm()  # r0 was queued before: it does not count
        assert condition.check() is None
        _TaskInstances.states.append({"dag_id": "d", "dag_run_id": "r1", "task_id": "t",
                                      "try_number": 1, "state": "queued"})  # fmt: skip
        added = time.time()
        met = wait_for(condition, timeout_s=5)
    assert met is not None and met.evidence["task_instance"]["dag_run_id"] == "r1"
    assert met.t_wall - added < BOUND_S
