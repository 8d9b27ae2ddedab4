"""The local cluster with ``network: pod`` on real, small processes: PostgreSQL, Redis and
HAProxy each in its own network namespace, plus a small HTTP server standing in for
``api-server-0`` (it also reports whether it can connect to a given address, so links from a
third host can be checked). No Airflow component starts.

Checked: each replica's processes are in its host's namespace; PostgreSQL answers at its pod
address from the root namespace (the client host) and not on 127.0.0.1; the UI URL on
127.0.0.1 reaches the stand-in through the relay and HAProxy; a partition cuts exactly its
link until healed, recorded with its rules; the traffic guard allows the cluster's hosts
only while it runs; nothing is left (process, namespace, link, nft table) after stop() or a
SIGKILL of the harness. The loopback refusals run without root.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import servicesonly

from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.core.netguard import require_loopback
from harness.core.polling import poll
from harness.core.topology import Topology
from harness.platform.base import NetworkNemesis
from harness.platform.local import cluster as cluster_module
from harness.platform.local.cluster import LocalCluster
from harness.platform.local.nemesis import LocalNemesis
from harness.platform.local.net import PodNetwork, available, leftover
from harness.platform.local.net.cleanup import node_link_name, node_links
from harness.platform.local.net.ns import NETNS_DIR
from harness.platform.local.process import CLUSTER_VAR, find_processes, port_is_free

OK, NOTE = available()
needs_root = pytest.mark.skipif(not OK, reason=f"needs root and network namespaces: {NOTE}")

TOPOLOGY = Topology(api_servers=1, schedulers=1, dag_processors=0, triggerers=0, workers=1,
                    network="pod")  # fmt: skip
# api-server-0's stand-in: 200 on every path; /probe?host=H&port=P tries a TCP connect
API = textwrap.dedent(
    """
    import http.server, json, socket, sys, urllib.parse
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            body = {"path": url.path}
            if url.path == "/probe":
                try:
                    socket.create_connection((q["host"], int(q["port"])), timeout=1).close()
                    body["result"] = "ok"
                except OSError as exc:
                    body["result"] = type(exc).__name__
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
    """
)
SERVICES_ONLY = servicesonly.source(
    """
    def _stand_ins(self):
        port = self.ports["api-server-0"]
        ready = checks.http_check(port, "/api/v2/version", host=self._address_of("api-server-0"))
        return [self._spec("api-server-0", "api-server", [sys.executable, "-c", API, str(port)],
                           ports=(port,), readiness=ready)]
    """
)


def _services_only(monkeypatch) -> None:
    servicesonly.patch(monkeypatch, SERVICES_ONLY, API=API)


def _netns_inode(path: str | Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _connects(address: str, port: int, timeout_s: float = 1.0) -> str:
    try:
        socket.create_connection((address, port), timeout=timeout_s).close()
        return "ok"
    except OSError as exc:
        return type(exc).__name__


def _get(url: str, timeout_s: float = 3.0) -> tuple[int, dict]:
    parts = url.split("/", 3)
    host, port = parts[2].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        conn.request("GET", "/" + (parts[3] if len(parts) > 3 else ""))
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if response.status == 200 else {}
    finally:
        conn.close()


def _nothing_left(cluster_id: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        left = {
            "processes": find_processes(marker=(CLUSTER_VAR, cluster_id)),
            "network": leftover(cluster_id),  # namespaces, the client link, nft, delay programs
            "netns files": [p.name for p in NETNS_DIR.glob(f"{cluster_id}-*")],
            "links": node_links(cluster_id),
        }
        if not any(left.values()):
            return
        assert time.monotonic() < deadline, f"left behind: {left}"
        time.sleep(0.2)


@needs_root
def test_services_run_in_their_own_hosts_and_a_partition_cuts_exactly_its_link(monkeypatch):
    _services_only(monkeypatch)
    events: list[dict] = []
    with LocalCluster(TOPOLOGY) as cluster:
        cluster.bus.subscribe(events.append)
        hosts = cluster.hosts
        assert set(hosts) == {"client", "postgres", "redis", "haproxy", "api-server-0"}
        assert hosts["client"].node and len({h.address for h in hosts.values()}) == 5
        # every process of every replica runs in its host's namespace
        for name, replica in cluster.replicas.items():
            want = _netns_inode(NETNS_DIR / hosts[name].netns)
            members = replica.unit.members()
            assert replica.unit.pid in members, name
            for pid in members:
                assert _netns_inode(f"/proc/{pid}/ns/net") == want, (name, pid)
        assert len(cluster.replica("postgres").unit.members()) > 3  # its backends too
        # PostgreSQL: at its pod address from the client host, not on loopback
        pg, port = cluster.address("postgres"), cluster.ports["postgres"]
        with psycopg.connect(f"postgresql://airflow@{pg}:{port}/postgres", connect_timeout=5) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
        assert _connects("127.0.0.1", port) == "ConnectionRefusedError"
        assert _connects(pg, port) == "ok"
        # the supervisor's ports-free check looks inside the host's namespace
        assert not port_is_free(port, netns=hosts["postgres"].netns) and port_is_free(port)
        # the UI URL on 127.0.0.1: relay -> HAProxy (pod) -> the stand-in api-server
        assert cluster.ui_url == f"http://127.0.0.1:{cluster.ports['lb']}"
        assert cluster.lb_url == f"http://{cluster.address('haproxy')}:{cluster.ports['lb']}"

        def answers(url: str) -> bool:
            try:
                return _get(url + "/api/v2/version")[0] == 200
            except OSError:
                return False

        assert poll(lambda: answers(cluster.ui_url), timeout_s=20), "no answer on 127.0.0.1"
        assert answers(cluster.lb_url)
        backend = f"server api-server-0 {hosts['api-server-0'].address}:"
        assert "bind 10.213." in cluster.lb_config and backend in cluster.lb_config
        # the guard: the cluster's hosts are allowed, other addresses are not
        assert require_loopback(cluster.lb_url + "/") == cluster.lb_url
        with pytest.raises(HarnessError, match="non-loopback"):
            require_loopback("http://10.213.255.254:8080")
        api = cluster.api_server_urls["api-server-0"]
        redis_at = (cluster.address("redis"), cluster.ports["redis"])

        def from_api_server(address: str, to_port: int) -> str:
            return _get(f"{api}/probe?host={address}&port={to_port}")[1]["result"]

        assert from_api_server(pg, port) == "ok"
        # a partition postgres | api-server-0: exactly that link is cut
        nemesis = cluster.nemesis
        done = nemesis.partition("postgres", ["api-server-0"])
        (fault,) = done["detail"]["faults"]
        assert fault["op"] == "partition" and "drop" in fault["rules"][0]["nft"]
        assert from_api_server(pg, port) == "TimeoutError"
        assert from_api_server(*redis_at) == "ok"  # api-server-0 -> redis still works
        assert _connects(pg, port) == "ok"  # client -> postgres too
        # the client host is a host like the others
        cluster.nemesis.loss("redis", ["client"], percent=100)
        assert _connects(*redis_at) == "TimeoutError"
        assert from_api_server(*redis_at) == "ok"
        with pytest.raises(HarnessError, match="root namespace"):
            cluster.nemesis.latency("redis", ["client"], delay_ms=50)  # client -> redis: refused
        healed = cluster.nemesis.heal("postgres")
        assert healed["detail"]["healed"] == [fault["id"]]
        assert from_api_server(pg, port) == "ok"
        assert _connects(*redis_at) == "TimeoutError"  # redis's own fault is still there
        cluster.nemesis.heal("redis")
        assert _connects(*redis_at) == "ok"
        # as an experiment file has it: held for hold_s, then healed by the injector
        from harness.faults.ops import inject
        from harness.run.model import Fault

        fault = Fault(op="bandwidth", target="redis", peers=("api-server/all",),
                      rate_kbit=800, hold_s=0.2)  # fmt: skip
        (limited,) = inject(fault, cluster)
        assert [f["op"] for f in limited["detail"]["faults"]] == ["bandwidth"] * 2  # both ways
        assert limited["detail"]["faults"][0]["rules"][0]["htb_kbit"] == 800
        assert not cluster._network_faults.get("redis")  # healed
        with pytest.raises(HarnessError, match="unknown peers"):
            cluster.nemesis.partition("redis", ["nope"])
        assert cluster.metadata()["network"]["mode"] == "pod"
        cluster_id = cluster.cluster_id
    assert cluster.leftover_kernel_state() == []
    _nothing_left(cluster_id, timeout_s=5)
    assert _connects("127.0.0.1", cluster.ports["lb"]) == "ConnectionRefusedError"  # relay closed
    with pytest.raises(HarnessError, match="non-loopback"):
        require_loopback(cluster.lb_url)  # the hosts went with the cluster
    ops = [(e["op"], e["phase"]) for e in events if e["type"] == "fault"]
    assert ops == [("partition", "invoke"), ("partition", "ok"), ("loss", "invoke"),
                   ("loss", "ok"), ("latency", "invoke"), ("latency", "fail"), ("heal", "invoke"),
                   ("heal", "ok"), ("heal", "invoke"), ("heal", "ok"), ("bandwidth", "invoke"),
                   ("bandwidth", "ok"), ("heal", "invoke"), ("heal", "ok"), ("partition", "invoke"),
                   ("partition", "fail")]  # fmt: skip


HARNESS = textwrap.dedent(
    """
    import json, sys, time
    from harness.core.topology import Topology
    {services_only}
    topology = Topology.model_validate_json(sys.argv[1])
    cluster = LocalCluster(topology)
    cluster.start()
    cluster.nemesis.partition("postgres", ["api-server-0"])
    cluster.nemesis.latency("postgres", ["redis"], delay_ms=20)  # a delay program too
    print(json.dumps({{"cluster_id": cluster.cluster_id}}), flush=True)
    time.sleep(600)
    """
)


@needs_root
def test_the_watchdog_removes_the_pod_network_after_a_sigkill_of_the_harness(tmp_path):
    harness = servicesonly.start_harness(
        tmp_path / "owner.py",
        HARNESS,
        SERVICES_ONLY,
        TOPOLOGY,
        programs={"API": API},
        stderr=subprocess.PIPE,
    )
    try:
        line = harness.stdout.readline()
        assert line, f"the harness did not start its cluster: {harness.stderr.read()[-2000:]}"
        cluster_id = json.loads(line)["cluster_id"]
        left = leftover(cluster_id)
        assert any(x.startswith("netns ") for x in left)
        assert f"link {node_link_name(cluster_id)}" in left
        assert any(x.startswith("delay program ") for x in left)
    finally:
        harness.send_signal(signal.SIGKILL)  # no unwinding: only the watchdog is left
        harness.wait()
        harness.stdout.close()
        harness.stderr.close()
    _nothing_left(cluster_id, timeout_s=30)


@needs_root
def test_the_node_host_adds_only_its_link_and_route_to_the_root_namespace():
    cluster_id = f"hab-t-{os.getpid()}"
    with PodNetwork(cluster_id) as net:
        client, host = net.add_node_host("client"), net.add_host("a")
        assert client.node and client.exec_prefix == []
        link = node_link_name(cluster_id)
        assert node_links(cluster_id) == [link] and f"link {link}" in leftover(cluster_id)
        routes = subprocess.run(["ip", "-4", "route", "show", "dev", link], capture_output=True,
                                text=True).stdout.strip().splitlines()  # fmt: skip
        assert routes and all(r.startswith(str(net.subnet)) for r in routes), routes
        with socket.socket() as server:  # a host reaches the harness's host, in the root ns
            server.bind((client.address, 0))
            server.listen(1)
            connect = f"import socket; socket.create_connection({server.getsockname()!r}, 2)"
            done = subprocess.run([*host.exec_prefix, sys.executable, "-c", connect])
            assert done.returncode == 0
        with pytest.raises(HarnessError, match="root namespace"):
            net.bandwidth(["client"], ["a"], 1000)
        with pytest.raises(HarnessError, match="root namespace"):
            net.partition(["a"], ["client"], mode="reject")
        assert net.faults == []
    assert node_links(cluster_id) == [] and leftover(cluster_id) == []


def test_loopback_refuses_network_faults_naming_the_fix():
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    replica = SimpleNamespace(name="postgres", incarnation=1)
    nemesis = LocalNemesis(lambda name: replica, bus)
    assert isinstance(nemesis, NetworkNemesis)
    calls = [
        lambda: nemesis.partition("postgres", ["redis"]),
        lambda: nemesis.latency("postgres", ["redis"], delay_ms=10),
        lambda: nemesis.loss("postgres", ["redis"], percent=5),
        lambda: nemesis.bandwidth("postgres", ["redis"], rate_kbit=100),
        lambda: nemesis.heal("postgres"),
    ]
    for call in calls:
        with pytest.raises(HarnessError) as info:
            call()
        assert "network: pod" in str(info.value) and "\n" not in str(info.value)
    phases = [e["phase"] for e in events if e["type"] == "fault"]
    assert phases == ["invoke", "fail"] * 5


def test_pod_falls_back_to_loopback_without_root(monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(
        cluster_module, "available", lambda: (False, "network namespaces need root")
    )
    cluster = LocalCluster(Topology(network="pod"), log=said.append)
    cluster._setup_network()
    assert cluster.network is None and cluster.address("postgres") == "127.0.0.1"
    assert said == [cluster.network_note] and "loopback" in said[0] and "root" in said[0]
    assert cluster.leftover_kernel_state() == []


def test_a_loss_of_100_percent_drops_everything():
    from harness.platform.local.net import rules

    pairs = [(["10.213.0.1"], ["10.213.0.2"])]
    assert "numgen" not in rules.drop_chain("t", "f1", pairs, 100.0)
    assert "numgen random mod 10000 < 3000 drop" in rules.drop_chain("t", "f1", pairs, 30.0)


@needs_root
def test_airflow_components_are_configured_with_the_pod_addresses(tmp_path):
    """The wiring of the real components, without starting any: their commands and
    environment name the hosts' addresses, each spec carries its host."""
    topology = Topology(api_servers=2, schedulers=2, dag_processors=1, triggerers=1,
                        workers=1, network="pod")  # fmt: skip
    cluster = LocalCluster(topology)
    cluster.data_dir, cluster.logs_dir = tmp_path, tmp_path / "logs"
    cluster.airflow = SimpleNamespace(bin=tmp_path / "bin", prefix=tmp_path,
                                      airflow=tmp_path / "bin" / "airflow")  # fmt: skip
    cluster._allocate_ports()
    cluster._setup_network()
    try:
        specs = {s.name: s for s in cluster._airflow_specs()}
        addr, ports = cluster.address, cluster.ports
        assert set(cluster.hosts) == {"client", "postgres", "redis", "haproxy", *specs}
        for name, spec in specs.items():
            assert spec.host is cluster.hosts[name] and spec.netns == f"{cluster.cluster_id}-{name}"
        env = specs["worker-0"].env
        pg = f"{addr('postgres')}:{ports['postgres']}"
        assert (
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            == f"postgresql+psycopg2://airflow@{pg}/airflow"
        )
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+postgresql://airflow@{pg}/airflow"
        assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://{addr('redis')}:{ports['redis']}/0"
        lb = f"http://{addr('haproxy')}:{ports['lb']}"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{lb}/execution/"
        assert env["AIRFLOW__API__BASE_URL"] == f"http://127.0.0.1:{ports['lb']}"  # the browser's
        api = specs["api-server-1"].command
        assert api[api.index("--host") + 1] == addr("api-server-1")
        scheduler = specs["scheduler-1"].env
        assert scheduler["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST"] == addr(
            "scheduler-1"
        )
        assert "127.0.0.1" not in " ".join(v for k, v in env.items() if k.startswith("AIRFLOW__")
                                           and k != "AIRFLOW__API__BASE_URL")  # fmt: skip
        assert cluster.api_server_urls == {}  # no replica added yet: urls come from replicas
    finally:
        assert cluster.network.close() == []
    assert leftover(cluster.cluster_id) == []
