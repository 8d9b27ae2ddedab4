"""LoadProcess against a tiny real HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from jsonserver import JsonHandler, serving

from harness.core.errors import HarnessError
from harness.core.history import read_history
from harness.core.netguard import is_loopback_host, require_loopback
from harness.observe.load.process import LoadProcess


class _Airflowish(JsonHandler):
    def do_GET(self) -> None:
        path = self.route
        if path == "/api/v2/version":
            self.reply(200, {"version": "3.3.2"})
        elif path == "/api/v2/monitor/health":
            self.reply(200, {"metadatabase": {"status": "healthy"}})
        elif path == "/api/v2/dags":
            self.reply(200, {"dags": [], "total_entries": 0})
        elif path.endswith("/taskInstances"):
            self.reply(200, {"task_instances": [], "total_entries": 0})
        elif path.endswith("/dagRuns"):
            self.reply(200, {"dag_runs": [], "total_entries": 0})
        elif path.startswith("/api/v2/dags/"):
            self.reply(200, {"dag_id": path.rsplit("/", 1)[-1]})
        else:
            self.reply(404, {"detail": "not found"})

    def do_POST(self) -> None:
        self.body()
        self.reply(409, {"detail": "conflict"})


@pytest.fixture
def server() -> Iterator[str]:
    with serving(_Airflowish) as url:
        yield url


def _requests(run_dir: Path):
    df = read_history(run_dir)
    return df[df["type"] == "request"] if "type" in df else df


def _wait_for_requests(run_dir: Path, n: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (run_dir / "history" / "locust.jsonl").exists() and len(_requests(run_dir)) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} requests recorded; log: {_log(run_dir)}")


def _log(run_dir: Path) -> str:
    path = run_dir / "locust.log"
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def test_records_requests_and_stops_cleanly(tmp_path: Path, server: str) -> None:
    load = LoadProcess(tmp_path, server, users=4, spawn_rate=10, wait_time=(0.05, 0.2))
    with load:
        _wait_for_requests(tmp_path, 5)
        time.sleep(3)
        pid = load.pid
    assert load.returncode == 0, _log(tmp_path)
    assert pid is not None and not psutil.pid_exists(pid)

    df = _requests(tmp_path)
    assert len(df) >= 10
    assert df["ok"].all(), df[~df["ok"]].to_dict("records")[:3]
    assert set(df["status"]) == {200}
    assert (df["latency_s"] >= 0).all() and (df["latency_s"] < 5).all()
    assert {"GET /api/v2/dags", "GET /api/v2/monitor/health"} <= set(df["name"])
    assert "POST /api/v2/dags/{dag_id}/dagRuns" not in set(df["name"])  # trigger off by default
    assert set(df["method"]) == {"GET"}
    assert df["t_mono"].is_monotonic_increasing
    markers = read_history(tmp_path).query("type == 'marker'")
    assert list(markers["name"]) == ["load_start", "load_stop"]


def test_trigger_weight_and_failed_requests(tmp_path: Path, server: str) -> None:
    load = LoadProcess(tmp_path, server, users=3, spawn_rate=10, trigger_weight=50,
                       wait_time=(0.05, 0.1), duration_s=3)  # fmt: skip
    load.start()
    assert load.wait(timeout_s=30) == 0, _log(tmp_path)
    df = _requests(tmp_path)
    posts = df[df["name"] == "POST /api/v2/dags/{dag_id}/dagRuns"]
    assert len(posts) > 0
    assert (~posts["ok"]).all() and set(posts["status"]) == {409}
    assert posts["error"].notna().all()
    load.stop()


def test_sigkill_leaves_readable_history(tmp_path: Path, server: str) -> None:
    load = LoadProcess(tmp_path, server, users=4, spawn_rate=10, wait_time=(0.01, 0.05))
    load.start()
    _wait_for_requests(tmp_path, 5)
    assert load.pid is not None
    os.kill(load.pid, signal.SIGKILL)
    assert load.wait(timeout_s=10) == -signal.SIGKILL
    assert len(_requests(tmp_path)) >= 5
    load.stop()


def test_connection_errors_are_recorded(tmp_path: Path) -> None:
    # a port nobody listens on: requests fail without a status
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with LoadProcess(tmp_path, f"http://127.0.0.1:{port}", users=2, wait_time=(0.1, 0.2)):
        _wait_for_requests(tmp_path, 3)
    df = _requests(tmp_path)
    assert (~df["ok"]).all() and df["status"].isna().all() and df["error"].notna().all()


@pytest.mark.parametrize(
    "host", ["http://10.0.0.1:8080", "http://example.com", "https://8.8.8.8", "ftp://127.0.0.1"]
)
def test_refuses_non_loopback(tmp_path: Path, host: str) -> None:
    with pytest.raises(HarnessError):
        LoadProcess(tmp_path, host)
    assert not (tmp_path / "history").exists()


def test_loopback_hosts() -> None:
    assert all(map(is_loopback_host, ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback_host, ["0.0.0.0", "10.1.1.1", "localhost.evil.com", "::"]))
    assert require_loopback("http://localhost:8080/") == "http://localhost:8080"


def test_exits_when_parent_dies(tmp_path: Path, server: str) -> None:
    import subprocess
    import sys

    code = (
        "import os, sys, time\n"
        "from harness.observe.load.process import LoadProcess\n"
        f"p = LoadProcess({str(tmp_path)!r}, {server!r}, users=2)\n"
        "p.start(); print(p.pid, flush=True); time.sleep(2); os._exit(0)\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    child = psutil.Process(int(parent.stdout.split()[0]))
    try:
        child.wait(timeout=15)
    except psutil.TimeoutExpired:
        child.kill()
        raise
    markers = read_history(tmp_path).query("type == 'marker'")
    assert markers["detail"].iloc[-1] == {"reason": "parent_died"}


def test_names_other_than_localhost_are_refused_without_resolving():
    assert not is_loopback_host("myhost.internal")  # resolve=False: never looked up
    assert is_loopback_host("::ffff:127.0.0.1")
