"""Port-forward children (a stub kubectl that listens like the real one) and their upkeep:
re-pointed when a replica's pod is replaced, restarted when they pass no traffic though
kubectl runs (liveness by traffic, not by the process)."""

from __future__ import annotations

import copy
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_k8s_cluster import DOCS, TOPOLOGY, FakeCluster

from harness.platform.kubernetes.cluster import KubernetesCluster
from harness.platform.kubernetes.portforward import (
    Liveness,
    PortForward,
    http_answers,
    kubectl_base,
    port_open,
)

STUB = """#!{python}
import os, socket, sys
args = sys.argv[1:]
with open(os.environ["KUBECTL_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
local = int(args[-1].split(":")[0])
server = socket.create_server(("127.0.0.1", local))
answer = os.environ.get("STUB_ANSWER") == "1"
while True:
    conn, _ = server.accept()
    if answer:  # a working forward: the api-server's answer comes back
        conn.recv(1024)
        conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n")
    conn.close()  # else: kubectl lost its stream to the pod, it only closes
"""


@pytest.fixture
def kubectl_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "kubectl"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "kubectl.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KUBECTL_LOG", str(log))
    return log


def test_port_forward_child_starts_listens_and_stops(kubectl_log: Path):
    base = kubectl_base("kind-x", "ha-bench", "/tmp/kubeconfig")
    forward = PortForward(base, 8080)
    assert forward.start("svc/airflow-api-server")
    assert forward.alive() and port_open(forward.local_port)
    assert forward.url == f"http://127.0.0.1:{forward.local_port}"
    pid = forward._proc.pid  # type: ignore[union-attr]
    forward.close()
    assert not forward.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert kubectl_log.read_text().split() == [
        "--kubeconfig",
        "/tmp/kubeconfig",
        "--context",
        "kind-x",
        "--namespace",
        "ha-bench",
        "port-forward",
        "--address",
        "127.0.0.1",
        "svc/airflow-api-server",
        f"{forward.local_port}:8080",
    ]


class ReplacingCluster(FakeCluster):
    """A deleted api-server pod is replaced at once by a ready pod of a new name."""

    def delete_pod(self, namespace: str, name: str, *, uid: str, grace_s: int | None) -> None:
        old = copy.deepcopy(self.objects[("Pod", name)])
        super().delete_pod(namespace, name, uid=uid, grace_s=grace_s)
        new = copy.deepcopy(old)
        new["metadata"].update(name=name + "-new", uid=uid + "-new")
        self.put(new)
        with self._lock:
            self.pending.setdefault("Pod", []).append(("ADDED", new))


def wait(predicate: Any, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_api_server_forwards_follow_the_replacement_pod(kubectl_log: Path):
    api = ReplacingCluster()
    with KubernetesCluster(
        TOPOLOGY,
        context="kind-ha-bench",
        manifests=DOCS,
        lb="port-forward",
        api=api,
        ready_timeout_s=10,
    ) as cluster:
        urls = cluster.api_server_urls
        assert list(urls) == ["api-server-0", "api-server-1"]
        assert cluster.lb_url.startswith("http://127.0.0.1:")
        port = int(urls["api-server-0"].rsplit(":", 1)[1])
        assert wait(lambda: port_open(port))
        old = cluster._forwards["api-server-0"].target
        cluster.nemesis.kill("api-server-0")
        assert wait(lambda: cluster._forwards["api-server-0"].target == f"{old}-new")
        assert wait(lambda: port_open(port))  # the same URL, now to the new pod
        assert cluster.api_server_urls == urls
        forwards = [*cluster._forwards.values(), cluster._lb_forward]
    assert all(f is not None and not f.alive() for f in forwards)
    targets = [line.split()[-2] for line in kubectl_log.read_text().splitlines()]
    assert targets[0] == "svc/airflow-api-server"
    assert f"{old}-new" in targets


def test_liveness_restarts_after_repeated_silence_and_not_in_a_loop():
    clock = [0.0]
    live = Liveness(failures=3, min_gap_s=15, clock=lambda: clock[0])
    assert [live.check("a", False) for _ in range(3)] == [False, False, True]
    assert [live.check("a", False) for _ in range(3)] == [False, False, False]  # 15 s gap
    clock[0] = 16.0
    assert live.check("a", False) is True
    assert live.check("a", True) is False and live.check("b", False) is False


def test_http_answers_tells_a_forward_that_passes_traffic(kubectl_log: Path, monkeypatch):
    base = kubectl_base("kind-x", "ha-bench")
    silent = PortForward(base, 8080)
    assert silent.start("pod/a") and silent.alive()
    assert port_open(silent.local_port) and not silent.responds(timeout_s=0.5)
    silent.close()
    monkeypatch.setenv("STUB_ANSWER", "1")
    working = PortForward(base, 8080)
    assert working.start("pod/a") and working.responds(timeout_s=2)
    assert http_answers(working.local_port, "/api/v2/monitor/health")
    working.close()
    assert not working.responds()


def test_a_forward_that_passes_no_traffic_is_restarted(kubectl_log: Path, monkeypatch):
    import functools

    import harness.platform.kubernetes.access as access_module

    monkeypatch.setattr(access_module, "FORWARD_CHECK_S", 0.1)
    monkeypatch.setattr(
        access_module, "Liveness", functools.partial(Liveness, failures=2, min_gap_s=0.5)
    )
    with KubernetesCluster(
        TOPOLOGY,
        context="kind-ha-bench",
        manifests=DOCS,
        lb="port-forward",
        api=FakeCluster(),
        ready_timeout_s=10,
    ) as cluster:
        assert wait(lambda: cluster.forward_restarts.get("api-server-0", 0) >= 1, 10)
        assert wait(lambda: cluster.forward_restarts.get("lb", 0) >= 1, 10)
        assert cluster.metadata()["port_forward_restarts"]["api-server-0"] >= 1
        pod = cluster.state.read(lambda t: t.pod_for("api-server-0"))["metadata"]["name"]

        def starts() -> int:
            lines = kubectl_log.read_text().splitlines()
            return sum(1 for line in lines if line.split()[-2] == f"pod/{pod}")

        assert wait(lambda: starts() >= 2)  # api-server-0's forward started again


def test_a_forward_that_passes_traffic_is_left_alone(kubectl_log: Path, monkeypatch):
    import functools

    import harness.platform.kubernetes.access as access_module

    monkeypatch.setenv("STUB_ANSWER", "1")
    monkeypatch.setattr(access_module, "FORWARD_CHECK_S", 0.1)
    monkeypatch.setattr(
        access_module, "Liveness", functools.partial(Liveness, failures=2, min_gap_s=0.5)
    )
    with KubernetesCluster(
        TOPOLOGY,
        context="kind-ha-bench",
        manifests=DOCS,
        lb="port-forward",
        api=FakeCluster(),
        ready_timeout_s=10,
    ) as cluster:
        time.sleep(1.5)
        assert cluster.forward_restarts == {}
