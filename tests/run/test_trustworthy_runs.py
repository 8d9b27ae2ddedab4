"""Real-process runs whose numbers must not flatter: a scheduler that never comes back, a
prober that stalls, a late blip after the fault (real Airflow, PostgreSQL, Redis, HAProxy)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.cluster

SMALL = textwrap.dedent("""\
    api_servers: 1
    schedulers: 1
    workers: 1
    triggerers: 0
""")

SHORT_KILL = textwrap.dedent("""\
    schema_version: 1
    name: short-kill
    description: "SIGKILL api-server-0 of {{ api_servers }}"
    fault: {op: kill, target: api-server-0}
    warmup_s: 1.0
    baseline_s: 3.0
    fault_window_s: 0.5
    settle_s: 3.0
    drain_timeout_s: 20.0
    load_users: 0
    hypotheses:
      - {metric: recovery_s, op: "<=", value: 60.0}
""")


def _ha_bench(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"ha-bench run did not finish:\n{out[-3000:]}")
    return out


def _wait_for_fault(out: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = out / "rep-1" / "history" / "cluster.jsonl"
        if history.exists() and '"type":"fault"' in history.read_text():
            return
        time.sleep(0.2)
    raise AssertionError("the fault never happened")


def _descendants(proc: subprocess.Popen, needle: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "name"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if needle in cmd or p.info["name"] == needle:
            try:
                if any(a.pid == proc.pid for a in p.parents()):
                    found.append(p)
            except psutil.Error:
                pass
    return found


def test_a_scheduler_that_never_comes_back_refutes_the_scheduling_gate(tmp_path):
    topology = tmp_path / "no-restart.yaml"
    topology.write_text(SMALL + "restart: {enabled: false}\n")
    out = tmp_path / "out"
    proc = _ha_bench("run", "scheduler-kill", "--topology", str(topology), "--max-reruns", "0",
                     "--set", "load_users=2", "--out", str(out))  # fmt: skip
    printed = _finish(proc, timeout=900)
    assert proc.returncode == 1, printed[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    (rep,) = summary["repetitions"]
    assert rep["valid"], rep["invalid_reasons"]
    assert rep["scheduling_resumed_s"] is None
    assert rep["censored"]["scheduling_resumed_s"] >= 60.0
    gate = summary["verdicts"]["scheduling_resumed_s <= 60.0"]
    assert gate["verdict"] == "refuted" and gate["gate"]
    assert "never (>=" in printed and "scheduling_resumed_s <= 60.0: refuted" in printed


def test_a_stalled_prober_makes_the_run_invalid(tmp_path):
    (tmp_path / "small.yaml").write_text(SMALL)
    (tmp_path / "kill.yaml").write_text(SHORT_KILL)
    out = tmp_path / "out"
    small = str(tmp_path / "small.yaml")
    proc = _ha_bench("run", str(tmp_path / "kill.yaml"), "--topology", small,
                     "--max-reruns", "0", "--out", str(out))  # fmt: skip
    _wait_for_fault(out)
    probers = _descendants(proc, "harness.observe.probe.process")
    assert probers, "no prober process found"
    main = [p for p in probers if "health" not in " ".join(p.cmdline())] or probers
    for p in main:
        p.suspend()  # the 50 ms prober stalls for 1 s
    time.sleep(1.0)
    for p in main:
        p.resume()
    printed = _finish(proc)
    assert proc.returncode == 3, printed[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["valid"] is False
    (rep,) = summary["repetitions"]
    assert any("sent nothing for" in r for r in rep["invalid_reasons"]), rep["invalid_reasons"]
    assert "invalid run" in printed


def test_a_late_blip_is_a_rejoin_blip_not_the_recovery(tmp_path):
    (tmp_path / "two.yaml").write_text(SMALL.replace("api_servers: 1", "api_servers: 2"))
    (tmp_path / "kill.yaml").write_text(SHORT_KILL.replace("settle_s: 3.0", "settle_s: 12.0"))
    out = tmp_path / "out"
    proc = _ha_bench("run", str(tmp_path / "kill.yaml"), "--topology", str(tmp_path / "two.yaml"),
                     "--max-reruns", "0", "--out", str(out))  # fmt: skip
    _wait_for_fault(out)
    time.sleep(8.0)  # well past the 5 s detection window
    (haproxy,) = _descendants(proc, "haproxy")
    haproxy.suspend()  # every LB probe times out for a moment: a blip clients see
    threading.Event().wait(1.6)
    haproxy.resume()
    printed = _finish(proc)
    assert proc.returncode == 0, printed[-3000:]
    (rep,) = json.loads((out / "summary.json").read_text())["repetitions"]
    assert rep["recovery_s"] == 0.0 and rep["time_to_detect_s"] is None
    assert rep["rejoin_blips"] and rep["rejoin_blips"][0]["after_s"] > 5.0
    assert rep["downtime_s"] > 0.5  # clients saw it, and it is reported
