"""Port-forward children (a stub kubectl that listens like the real one) and their upkeep
when a replica's pod is replaced."""

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
from harness.platform.kubernetes.portforward import PortForward, kubectl_base, port_open

STUB = """#!{python}
import os, socket, sys
args = sys.argv[1:]
with open(os.environ["KUBECTL_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
local = int(args[-1].split(":")[0])
server = socket.create_server(("127.0.0.1", local))
while True:
    conn, _ = server.accept()
    conn.close()
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
