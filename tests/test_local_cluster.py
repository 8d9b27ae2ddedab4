"""The local platform on real processes: real Airflow, PostgreSQL, Redis and HAProxy.

Each test that needs its own topology starts the smallest cluster that shows the
behaviour; the two-api-server case shares the session's reference cluster.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field

import pytest

from harness.platform.local.cluster import LocalCluster
from harness.platform.local.process import CLUSTER_VAR, find_processes, port_is_free
from harness.testing import SMALL

pytestmark = pytest.mark.cluster


@dataclass
class Probe:
    """A minimal open-loop probe of one URL, every 50 ms, for the platform tests."""

    port: int
    path: str = "/api/v2/version"
    results: list[tuple[float, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _one(self, sent: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
        try:
            conn.request("GET", self.path)
            ok = conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            ok = False
        finally:
            conn.close()
        self.results.append((sent, ok))

    def _run(self) -> None:
        start = time.monotonic()
        k = 0
        while not self._stop.is_set():
            sent = start + k * 0.05
            threading.Thread(target=self._one, args=(sent,), daemon=True).start()
            k += 1
            self._stop.wait(max(0.0, start + k * 0.05 - time.monotonic()))

    def __enter__(self) -> Probe:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        time.sleep(1.1)  # let in-flight probes finish

    def failures_after(self, t: float) -> list[float]:
        return sorted(s for s, ok in self.results if not ok and s >= t)

    def successes_after(self, t: float) -> list[float]:
        return sorted(s for s, ok in self.results if ok and s >= t)


def _events(cluster: LocalCluster) -> list[dict]:
    events: list[dict] = []
    cluster.bus.subscribe(events.append)
    return events


def _assert_cleaned_up(cluster_id: str, ports: dict[str, int]) -> None:
    deadline = time.monotonic() + 5
    while find_processes(marker=(CLUSTER_VAR, cluster_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert find_processes(marker=(CLUSTER_VAR, cluster_id)) == []
    busy = {name: port for name, port in ports.items() if not port_is_free(port)}
    assert busy == {}


def test_killing_the_only_api_server_means_downtime_until_the_replacement_is_ready(tmp_path):
    with LocalCluster(SMALL, logs_dir=tmp_path / "logs") as cluster:
        events = _events(cluster)
        ports = dict(cluster.ports)
        with Probe(cluster.ports["lb"]) as probe:
            time.sleep(1.0)
            fault = cluster.nemesis.kill("api-server-0")
            replica = cluster.replica("api-server-0")
            deadline = time.monotonic() + 120
            while not (replica.incarnation == 2 and replica.ready):
                assert time.monotonic() < deadline, "replacement never became ready"
                time.sleep(0.1)
            ready_at = time.monotonic()
            while not probe.successes_after(ready_at - 5) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
        killed_at = fault["t_mono"]
        failures = probe.failures_after(killed_at - 0.05)
        assert failures, "killing the only api-server must make requests through HAProxy fail"
        restarted = next(
            e["t_mono"] for e in events
            if e.get("replica") == "api-server-0" and e.get("state") == "starting"
            and e.get("incarnation") == 2
        )  # fmt: skip
        ready = next(
            e["t_mono"] for e in events
            if e.get("replica") == "api-server-0" and e.get("state") == "ready"
            and e.get("incarnation") == 2
        )  # fmt: skip
        # nothing answers between the kill and the replacement's start
        assert not [s for s, ok in probe.results if ok and killed_at + 0.2 < s < restarted]
        downtime = probe.successes_after(failures[0])[0] - failures[0]
        assert downtime > 0
        assert probe.successes_after(failures[0])[0] > restarted
        assert ready - killed_at > 1.0  # an api-server needs seconds to start: the floor
        # the replacement bound the same port and answers directly
        conn = http.client.HTTPConnection("127.0.0.1", ports["api-server-0"], timeout=5)
        conn.request("GET", "/api/v2/version")
        assert conn.getresponse().status == 200
        conn.close()
        cluster_id = cluster.cluster_id
    _assert_cleaned_up(cluster_id, ports)  # normal exit of the context


def test_killing_one_of_two_api_servers_leaves_haproxy_serving(ha_cluster):
    cluster = ha_cluster
    events = _events(cluster)
    with Probe(cluster.ports["lb"]) as probe:
        time.sleep(1.0)
        fault = cluster.nemesis.kill("api-server-1")
        time.sleep(4.0)
    assert fault["phase"] == "ok" and fault["detail"]["signalled"] >= 1
    after = [ok for s, ok in probe.results if s >= fault["t_mono"]]
    assert len(after) >= 60
    failed = after.count(False)
    assert failed <= 1, f"{failed} of {len(after)} probes through HAProxy failed"
    out_of_lb = [e for e in events if e.get("state") == "out_of_lb"]
    assert [e["replica"] for e in out_of_lb] == ["api-server-1"], "HAProxy should take it out"
    assert cluster.replica("api-server-1").wait_ready(120)


def test_cleanup_after_an_exception(tmp_path):
    ports: dict[str, int] = {}
    cluster_id = ""
    with pytest.raises(RuntimeError, match="boom"), LocalCluster(SMALL) as cluster:
        cluster_id, ports = cluster.cluster_id, dict(cluster.ports)
        data_dir = cluster.data_dir
        raise RuntimeError("boom")
    _assert_cleaned_up(cluster_id, ports)
    assert not data_dir.exists()


def _start_and_wait_ready(command: list[str], tmp_path) -> tuple[subprocess.Popen, dict]:
    with open(tmp_path / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=tmp_path,
            start_new_session=True,
        )  # fmt: skip
    for line in proc.stdout:
        if line.startswith("{"):
            return proc, json.loads(line)
        if line.startswith("READY "):
            return proc, json.loads(line[6:])
    proc.wait()
    raise AssertionError(f"never ready: {(tmp_path / 'stderr.log').read_text()[-2000:]}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_up_cleans_up_on_signal(tmp_path, sig):
    (tmp_path / "small.yaml").write_text(
        "api_servers: 1\nschedulers: 1\ndag_processors: 0\ntriggerers: 0\nworkers: 1\n"
    )
    proc, info = _start_and_wait_ready(
        [sys.executable, "-m", "harness.cli", "up", "--topology", "small.yaml", "--json"],
        tmp_path,
    )
    try:
        assert find_processes(marker=(CLUSTER_VAR, info["cluster_id"]))
        proc.send_signal(sig)
        assert proc.wait(timeout=60) in (0, 130, 128 + signal.SIGTERM)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _assert_cleaned_up(info["cluster_id"], info["ports"])
    assert not os.path.exists(info["data_dir"])


def test_pytest_fixture_cleans_up_when_pytest_gets_sigterm(tmp_path):
    (tmp_path / "test_hold.py").write_text(textwrap.dedent(
        """
        import json, time
        from harness.testing import SMALL
        pytest_plugins = ["harness.testing"]

        def test_hold(cluster_factory):
            cluster = cluster_factory(SMALL)
            print("READY " + json.dumps({"cluster_id": cluster.cluster_id,
                  "ports": cluster.ports, "data_dir": str(cluster.data_dir)}), flush=True)
            time.sleep(600)
        """
    ))  # fmt: skip
    proc, info = _start_and_wait_ready(
        [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", "test_hold.py"],
        tmp_path,
    )
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _assert_cleaned_up(info["cluster_id"], info["ports"])
    assert not os.path.exists(info["data_dir"])


def test_watchdog_cleans_up_when_the_harness_is_killed(tmp_path):
    (tmp_path / "small.yaml").write_text(
        "api_servers: 1\nschedulers: 1\ndag_processors: 0\ntriggerers: 0\nworkers: 1\n"
    )
    proc, info = _start_and_wait_ready(
        [sys.executable, "-m", "harness.cli", "up", "--topology", "small.yaml", "--json"],
        tmp_path,
    )
    proc.kill()  # SIGKILL: no handler, no unwinding; only the watchdog can clean up
    proc.wait()
    time.sleep(2.0)
    _assert_cleaned_up(info["cluster_id"], info["ports"])
    assert not os.path.exists(info["data_dir"])
