"""The open-loop prober against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from groundtruth import GroundTruthServer, free_port

from harness.core import history
from harness.observe.probe.prober import HEALTH_ENDPOINT, ProbeTarget, run_probes
from harness.observe.probe.process import ProberProcess


def _probes(run_dir: Path) -> list[dict]:
    df = history.read_history(run_dir)
    return df[df["type"] == "probe"].to_dict("records")


def test_open_loop_schedule_holds_when_every_request_hangs(tmp_path: Path) -> None:
    interval, duration = 0.05, 2.0
    with GroundTruthServer() as server:
        server.set_mode("stalled")
        target = ProbeTarget("hang", server.url)
        with history.HistoryWriter(tmp_path, "prober") as writer:
            stats = asyncio.run(
                run_probes(
                    [target], writer, duration_s=duration, interval_s=interval, timeout_s=1.0
                )
            )
    assert stats.planned == 40
    assert stats.achieved_fraction >= 0.95, stats
    assert stats.overload == 0
    probes = _probes(tmp_path)
    assert len(probes) == stats.sent
    assert {p["outcome"] for p in probes} == {"timeout"}
    sends = np.array(sorted(p["t_mono"] for p in probes)) - stats.started_mono
    # a closed-loop prober would have sent 1 probe before the first 1 s timeout fired
    assert (sends < 0.99).sum() >= 18
    # each probe left close to its slot t0 + k * interval
    slot_offset = sends - np.round(sends / interval) * interval
    assert np.median(np.abs(slot_offset)) < 0.01
    assert np.median(np.diff(sends)) == pytest.approx(interval, abs=0.01)
    # and every hung probe took the full timeout
    assert min(p["latency_s"] for p in probes) >= 0.95


def test_outcome_classification(tmp_path: Path) -> None:
    closed_port = free_port()
    with (
        GroundTruthServer() as ok_server,
        GroundTruthServer() as error_server,
        GroundTruthServer() as hang_server,
        GroundTruthServer() as reset_server,
    ):
        error_server.set_mode("http5xx", status=500)
        hang_server.set_mode("stalled")
        reset_server.set_mode("reset")
        targets = [
            ProbeTarget("ok", ok_server.url, ("/api/v2/version", HEALTH_ENDPOINT)),
            ProbeTarget("refused", f"http://127.0.0.1:{closed_port}"),
            ProbeTarget("error", error_server.url),
            ProbeTarget("hang", hang_server.url),
            ProbeTarget("reset", reset_server.url),
        ]
        with history.HistoryWriter(tmp_path, "prober") as writer:
            stats = asyncio.run(
                run_probes(targets, writer, duration_s=0.5, interval_s=0.1, timeout_s=0.3)
            )
    probes = _probes(tmp_path)
    assert len(probes) == stats.sent == 6 * 5
    by_target: dict[str, list[dict]] = {}
    for p in probes:
        by_target.setdefault(p["target"], []).append(p)
    expected = {"ok": "ok", "refused": "refused", "error": "http_error", "hang": "timeout"}
    expected["reset"] = "reset"
    for name, outcome in expected.items():
        assert {p["outcome"] for p in by_target[name]} == {outcome}, (name, by_target[name])
    assert all(p["ok"] for p in by_target["ok"])
    assert not any(p["ok"] for name in expected if name != "ok" for p in by_target[name])
    assert {p["status"] for p in by_target["error"]} == {500}
    assert all(p["status"] == 200 for p in by_target["ok"])
    health = [p for p in by_target["ok"] if p["endpoint"] == HEALTH_ENDPOINT]
    assert len(health) == 5
    assert all(p["body"]["metadatabase"]["status"] == "healthy" for p in health)
    assert all(0.25 <= p["latency_s"] <= 0.5 for p in by_target["hang"])
    assert all(p["error"] for name in expected if name != "ok" for p in by_target[name])


def test_prober_process_stop_flushes_and_exits_zero(tmp_path: Path) -> None:
    with GroundTruthServer() as server:
        prober = ProberProcess(
            [ProbeTarget("gt", server.url)], tmp_path, interval_s=0.05, timeout_s=0.3
        ).start()
        time.sleep(1.0)
        assert prober.is_running()
        assert prober.stop() == 0
    df = history.read_history(tmp_path)
    probes = df[df["type"] == "probe"]
    assert len(probes) >= 10
    assert probes["ok"].all()
    markers = df.loc[df["type"] == "marker", "name"].tolist()
    assert markers == ["prober_start", "prober_end"]


def test_prober_process_sigkill_leaves_readable_history(tmp_path: Path) -> None:
    with GroundTruthServer() as server:
        prober = ProberProcess(
            [ProbeTarget("gt", server.url)], tmp_path, interval_s=0.02, timeout_s=0.3
        ).start()
        time.sleep(0.8)
        os.killpg(prober.pid, signal.SIGKILL)
        assert prober.wait(5) == -signal.SIGKILL
        prober.stop()
    df = history.read_history(tmp_path)
    assert (df["type"] == "probe").sum() >= 10
    assert "prober_end" not in set(df.loc[df["type"] == "marker", "name"])


def test_prober_process_exits_when_its_parent_dies(tmp_path: Path) -> None:
    with GroundTruthServer() as server:
        script = textwrap.dedent(
            f"""
            import sys, time
            from harness.observe.probe.prober import ProbeTarget
            from harness.observe.probe.process import ProberProcess
            p = ProberProcess([ProbeTarget("gt", {server.url!r})], {str(tmp_path)!r},
                              interval_s=0.05, timeout_s=0.3).start()
            print(p.pid, flush=True)
            time.sleep(60)
            """
        )
        parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert parent.stdout is not None
            child_pid = int(parent.stdout.readline())
            time.sleep(0.5)
            parent.kill()
            parent.wait(5)
            deadline = time.monotonic() + 5
            gone = False
            while time.monotonic() < deadline and not gone:
                try:
                    gone = psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
                except psutil.NoSuchProcess:
                    gone = True
                time.sleep(0.05)
            if not gone:
                os.killpg(child_pid, signal.SIGKILL)
            assert gone, "prober outlived its parent"
        finally:
            if parent.poll() is None:
                parent.kill()
            parent.wait(5)
            if parent.stdout is not None:
                parent.stdout.close()
    df = history.read_history(tmp_path)
    assert (df["type"] == "probe").sum() >= 5
    assert "prober_end" in set(df.loc[df["type"] == "marker", "name"])


def test_run_probes_rejects_bad_arguments(tmp_path: Path) -> None:
    target = ProbeTarget("x", "http://127.0.0.1:1")
    with history.HistoryWriter(tmp_path, "prober") as writer:
        for kwargs in ({"duration_s": 0}, {"duration_s": 1, "interval_s": 0}, {"duration_s": None}):
            with pytest.raises(ValueError):
                asyncio.run(run_probes([target], writer, **kwargs))
