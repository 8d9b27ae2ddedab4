"""The local platform on real processes: real Airflow, PostgreSQL, Redis and HAProxy.

Each test that needs its own topology starts the smallest cluster that shows the
behaviour; the two-api-server case shares the session's reference cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.outages import observations, outage_windows
from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.history import read_history
from harness.core.topology import Topology
from harness.observe.probe.prober import ProbeTarget
from harness.observe.probe.process import ProberProcess
from harness.platform.local.cluster import LocalCluster, find_binary
from harness.platform.local.process import CLUSTER_VAR, find_processes, free_port, port_is_free
from harness.run.testing import SMALL

pytestmark = pytest.mark.cluster


@contextlib.contextmanager
def lb_probe(run_dir: Path, url: str) -> Iterator[Callable[[], pd.DataFrame]]:
    """The harness's own open-loop prober on the LB (every 50 ms, 1 s timeout) in its own
    process; yields a reader of the probe observations recorded so far."""
    target = ProbeTarget("lb", url)
    with ProberProcess([target], run_dir):
        yield lambda: observations(read_history(run_dir), target="lb")


def _events(cluster: LocalCluster) -> list[dict]:
    events: list[dict] = []
    cluster.bus.subscribe(events.append)
    return events


def _assert_cleaned_up(cluster_id: str, ports: dict[str, int], logs: Path | None = None) -> None:
    """No process of the cluster is left (after up to 5 s) and every port is free; a failure
    names what was left, plus the harness's own output when it ran as a child (``logs``)."""
    deadline = time.monotonic() + 5
    while find_processes(marker=(CLUSTER_VAR, cluster_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: _cmdline(pid) for pid in find_processes(marker=(CLUSTER_VAR, cluster_id))}
    busy = {name: port for name, port in ports.items() if not port_is_free(port)}
    output = _harness_output(logs) if logs else ""
    assert left == {}, f"cluster processes left: {left}{output}"
    assert busy == {}, f"ports still bound: {busy}{output}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


def _harness_output(logs: Path) -> str:
    parts = []
    for name in ("stdout.log", "stderr.log"):
        path = logs / name
        text = path.read_text(errors="replace")[-3000:] if path.exists() else ""
        parts.append(f"\n--- harness {name} (tail) ---\n{text}")
    return "".join(parts)


def test_killing_the_only_api_server_means_downtime_until_the_replacement_is_ready(tmp_path):
    with LocalCluster(SMALL, logs_dir=tmp_path / "logs") as cluster:
        events = _events(cluster)
        ports = dict(cluster.ports)
        with lb_probe(tmp_path / "probe", cluster.lb_url) as observed:
            time.sleep(1.0)
            fault = cluster.nemesis.kill("api-server-0")
            replica = cluster.replica("api-server-0")
            deadline = time.monotonic() + 120
            while not (replica.incarnation == 2 and replica.ready):
                assert time.monotonic() < deadline, "replacement never became ready"
                time.sleep(0.1)
            ready_at = time.monotonic()
            while time.monotonic() < deadline:
                obs = observed()
                if (obs.ok & (obs.t_mono >= ready_at - 5)).any():
                    break
                time.sleep(0.2)
            time.sleep(1.0)
        obs = observed()
        killed_at = fault["t_mono"]
        failures = obs.t_mono[~obs.ok & (obs.t_mono >= killed_at - 0.05)]
        assert len(failures), "killing the only api-server must make requests through HAProxy fail"
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
        # nothing answers from the kill until the replacement is ready; the slack is the two
        # clocks' check periods (supervisor 0.5 s; HAProxy 2 passing checks 0.5 s apart)
        assert restarted < ready
        quiet_until = max(restarted, ready - 1.0)  # never shorter than up to the restart
        assert not (obs.ok & (obs.t_mono > killed_at + 0.2) & (obs.t_mono < quiet_until)).any()
        # the harness's analysis sees one outage from the kill until the replacement is ready
        windows = outage_windows(read_history(tmp_path / "probe"), target="lb")
        outage = windows[windows.end_mono > killed_at].iloc[0]
        # its first failed probe may have been in flight at the kill: within one timeout
        assert killed_at - 1.0 <= outage.start_mono <= failures.iloc[0]
        assert outage.duration_s > 0 and outage.end_mono >= quiet_until
        assert ready - killed_at > 1.0  # an api-server needs seconds to start: the floor
        # the replacement bound the same port and answers directly
        conn = http.client.HTTPConnection(cluster.address("api-server-0"), ports["api-server-0"],
                                          timeout=5)  # fmt: skip
        conn.request("GET", "/api/v2/version")
        assert conn.getresponse().status == 200
        conn.close()
        # the next repetition starts from here: the replacement is counted
        restarts = cluster.prepare_repetition()
        assert set(restarts) == set(cluster.replica_names()) and restarts["api-server-0"] == 1
        _assert_setup_recorded(cluster)
        cluster_id = cluster.cluster_id
    _assert_cleaned_up(cluster_id, ports)  # normal exit of the context


def _assert_setup_recorded(cluster: LocalCluster) -> None:
    """metadata() records the exact HAProxy configuration and the Airflow environment."""
    meta = cluster.metadata()
    lb = meta["lb"]
    assert lb["kind"] == "haproxy" and lb["version"] and lb["version"][0].isdigit()
    assert lb["config"] == (cluster.data_dir / "haproxy.cfg").read_text()
    assert lb["config_sha256"] == hashlib.sha256(lb["config"].encode()).hexdigest()
    assert "http-request disable-l7-retry if !METH_GET !METH_HEAD" in lb["config"]
    env = meta["airflow_env"]
    assert cluster.airflow is not None and env["path"] == str(cluster.airflow.prefix)
    assert f"apache-airflow=={cluster.topology.airflow_version}" in env["packages"]
    joined = "\n".join(env["packages"]).encode()
    assert env["packages_sha256"] == hashlib.sha256(joined).hexdigest()
    assert json.dumps(meta)  # JSON-able for the results


def test_killing_one_of_two_api_servers_leaves_haproxy_serving(ha_cluster, tmp_path):
    cluster = ha_cluster
    events = _events(cluster)
    with lb_probe(tmp_path / "probe", cluster.lb_url) as observed:
        time.sleep(1.0)
        fault = cluster.nemesis.kill("api-server-1")
        time.sleep(4.0)
    assert fault["phase"] == "ok" and fault["detail"]["signalled"] >= 1
    obs = observed()
    after = obs.ok[obs.t_mono >= fault["t_mono"]]
    assert len(after) >= 60
    failed = int((~after).sum())
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
    """Start a harness process (output to files, so it never blocks on a full pipe) and
    wait for its ready line: ``{...}`` from ``ha-bench up --json`` or ``READY {...}``."""
    with open(tmp_path / "stdout.log", "wb") as out, open(tmp_path / "stderr.log", "wb") as err:
        proc = subprocess.Popen(
            command, stdout=out, stderr=err, cwd=tmp_path, start_new_session=True
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for line in (tmp_path / "stdout.log").read_text(errors="replace").splitlines():
            if line.startswith("{"):
                return proc, json.loads(line)
            if line.startswith("READY "):
                return proc, json.loads(line[6:])
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"never ready (exit {proc.wait()}){_harness_output(tmp_path)}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_up_cleans_up_on_signal(tmp_path, sig):
    (tmp_path / "small.yaml").write_text(
        "api_servers: 1\nschedulers: 1\ndag_processors: 0\ntriggerers: 0\nworkers: 1\n"
    )
    port = free_port()
    proc, info = _start_and_wait_ready(
        [sys.executable, "-m", "harness.cli", "up", "--topology", "small.yaml", "--json",
         "--port", str(port)],
        tmp_path,
    )  # fmt: skip
    try:
        assert info["ports"]["lb"] == port and info["lb_url"] == f"http://127.0.0.1:{port}"
        assert find_processes(marker=(CLUSTER_VAR, info["cluster_id"]))
        proc.send_signal(sig)
        assert proc.wait(timeout=60) in (0, 130, 128 + signal.SIGTERM)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _assert_cleaned_up(info["cluster_id"], info["ports"], tmp_path)
    assert not os.path.exists(info["data_dir"]), _harness_output(tmp_path)


def test_pytest_fixture_cleans_up_when_pytest_gets_sigterm(tmp_path):
    (tmp_path / "test_hold.py").write_text(textwrap.dedent(
        """
        import json, time
        from harness.run.testing import SMALL
        pytest_plugins = ["harness.run.testing"]

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
    _assert_cleaned_up(info["cluster_id"], info["ports"], tmp_path)
    assert not os.path.exists(info["data_dir"]), _harness_output(tmp_path)


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
    _assert_cleaned_up(info["cluster_id"], info["ports"], tmp_path)
    assert not os.path.exists(info["data_dir"]), _harness_output(tmp_path)


def test_a_replica_that_never_gets_ready_fails_bring_up_with_its_name_and_log_tail(tmp_path):
    # an SSL certificate without a key: Airflow's api-server refuses to start, nothing else cares
    broken = SMALL.with_overrides(airflow_config={"api.ssl_cert": "/nonexistent/cert.pem"})
    cluster = LocalCluster(broken, logs_dir=tmp_path / "logs")
    with pytest.raises(HarnessError) as err, cluster:
        pass
    message = str(err.value)
    assert message.startswith("api-server-0 keeps exiting")
    assert "SSL key" in message  # the last lines of the replica's log
    assert f"fix: read {tmp_path / 'logs'}" in message and "\n" not in message
    _assert_cleaned_up(cluster.cluster_id, cluster.ports)


def test_a_fixed_lb_port_in_use_is_refused_before_anything_starts(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cluster = LocalCluster(SMALL.with_overrides(lb_port=port))
        with pytest.raises(HarnessError, match=f"port {port} \\(lb_port\\) is in use"), cluster:
            pass
        assert cluster.data_dir is None and cluster.replicas == {}
        assert main(["up", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is in use" in err[0] and "fix:" in err[0]


def test_lb_port_is_validated():
    with pytest.raises(HarnessError, match="lb_port"):
        Topology().with_overrides(lb_port=80)


def test_a_missing_server_binary_names_the_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HarnessError) as err:
        find_binary("haproxy")
    assert str(err.value) == (
        "haproxy not found on PATH — fix: install it: `apt-get install haproxy` "
        "(Debian/Ubuntu), or run scripts/setup.sh"
    )
