"""Namespace leases: owner and expiry annotations, what is stale, the next run's clean-up,
``ha-bench kind gc``; and what :meth:`KubernetesCluster.stop` keeps before the namespace
goes (every pod's logs, current and previous, events, descriptions) or when it keeps it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from test_k8s_cluster import FakeCluster, owned_cluster
from test_k8s_fakes import FakeApi

from harness.cli import main
from harness.core.errors import HarnessError
from harness.platform.kubernetes import namespaces
from harness.platform.kubernetes.manifests import PART_OF

NOW = dt.datetime(2026, 1, 12, 9, 0, tzinfo=dt.UTC)


def namespace(name: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(PART_OF), "annotations": annotations},
    }


def test_a_lease_names_its_owner_and_expires():
    notes = namespaces.lease(NOW, 600)
    assert notes[namespaces.OWNER] == namespaces.owner_id()
    assert notes[namespaces.EXPIRES] == "2026-01-12T09:10:00Z"
    assert namespaces.lease(NOW, kept="boom")[namespaces.KEPT] == "boom"


@pytest.mark.parametrize(
    ("notes", "alive", "stale"),
    [
        ({"ha-bench/owner": "u@h pid 1", "ha-bench/expires": "2026-01-12T09:30:00Z"}, True, None),
        ({"ha-bench/owner": "u@h pid 1", "ha-bench/expires": "2026-01-12T08:59:59Z"}, True,
         "lease of u@h pid 1 expired at 2026-01-12T08:59:59Z"),
        ({"ha-bench/owner": "u@h pid 1", "ha-bench/expires": "2026-01-12T09:30:00Z"}, False,
         "its owner (u@h pid 1) no longer runs"),
        ({"ha-bench/owner": "u@elsewhere pid 1", "ha-bench/expires": "2026-01-12T09:30:00Z"},
         None, None),
        ({"ha-bench/owner": "u@h pid 1", "ha-bench/expires": "2026-01-12T09:30:00Z",
          "ha-bench/kept": "BringUpError: x"}, True, "kept after a failure (BringUpError: x)"),
        ({}, True, "no owner or expiry annotation"),
    ],
)  # fmt: skip
def test_staleness(notes: dict[str, str], alive: bool | None, stale: str | None):
    ns = namespace("ha-bench", **notes)
    assert namespaces.staleness(ns, NOW, alive=lambda owner: alive) == stale


def test_owner_alive_on_this_host_only():
    import os
    import socket

    host = socket.gethostname()
    assert namespaces.owner_alive(f"me@{host} pid {os.getpid()}") is True
    assert namespaces.owner_alive(f"me@{host} pid 999999999") is False
    assert namespaces.owner_alive("me@some-other-host pid 1") is None


def test_keep_policy():
    assert namespaces.keep_policy({}) == "never"
    assert namespaces.keep_policy({"HA_BENCH_KEEP_NAMESPACE": "1"}) == "on-failure"
    assert namespaces.keep_policy({"HA_BENCH_KEEP_NAMESPACE": "always"}) == "always"
    assert namespaces.keep_policy({"HA_BENCH_KEEP_NAMESPACE": "0"}) == "never"


def test_the_next_run_deletes_stale_namespaces_and_refuses_one_in_use(monkeypatch):
    monkeypatch.delenv("HA_BENCH_KEEP_NAMESPACE", raising=False)
    api = FakeCluster()
    api.put(namespace("ha-bench-old", **{"ha-bench/owner": "u@h pid 1",
                                         "ha-bench/expires": "2026-01-01T00:00:00Z"}))  # fmt: skip
    api.put(namespace("ha-bench", **{"ha-bench/kept": "RuntimeError: earlier"}))
    live = {"ha-bench/owner": "u@elsewhere pid 7", "ha-bench/expires": "2999-01-01T00:00:00Z"}
    api.put(namespace("ha-bench-busy", **live))
    with owned_cluster(api) as cluster:
        assert cluster.metadata()["namespace"] == "ha-bench"
        deleted = [c[1][0] for c in api.mutations() if c[0] == "delete_namespace"]
        assert deleted == ["ha-bench-old", "ha-bench"]  # siblings first, then our own
        notes = api.objects[("Namespace", "ha-bench")]["metadata"]["annotations"]
        assert notes[namespaces.OWNER] == namespaces.owner_id() and namespaces.KEPT not in notes
    assert ("Namespace", "ha-bench-busy") in api.objects  # in use: left alone
    busy = FakeCluster()
    busy.put(namespace("ha-bench", **live))
    with pytest.raises(HarnessError, match=r"in use by u@elsewhere pid 7 until 2999"):
        owned_cluster(busy).start()
    assert [c[0] for c in busy.mutations()] == []


def test_the_lease_is_renewed_while_the_harness_runs(monkeypatch):
    monkeypatch.setattr(namespaces, "RENEW_S", 0.05)
    api = FakeCluster()
    with owned_cluster(api):
        import time

        time.sleep(0.4)
    applies = [c for c in api.mutations() if c[0] == "apply" and c[1][0] == "Namespace"]
    assert len(applies) >= 3  # the first apply, then renewals


def test_logs_are_kept_before_the_namespace_goes(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("HA_BENCH_KEEP_NAMESPACE", raising=False)
    api = FakeCluster()
    api.logs[("airflow-api-server-6f7d8-00000", "api-server", False)] = "started\n"
    api.logs[("airflow-api-server-6f7d8-00000", "api-server", True)] = "crashed before\n"
    with owned_cluster(api, logs_dir=tmp_path / "logs"):
        pass
    names = [c[0] for c in api.calls]
    assert "pod_log" in names and names.index("pod_log") < names.index("delete_namespace")
    assert names[-1] != "pod_log"
    kept = tmp_path / "logs" / "kubernetes" / "ha-bench"
    pod = kept / "airflow-api-server-6f7d8-00000"
    assert (pod / "api-server.log").read_text() == "started\n"
    assert (pod / "api-server.previous.log").read_text() == "crashed before\n"
    assert (pod / "describe.txt").exists() and (pod / "pod.yaml").exists()
    assert (kept / "events.txt").exists()
    assert len([d for d in kept.iterdir() if d.is_dir()]) == 9  # every pod of the cluster


@pytest.mark.parametrize(
    ("policy", "fail", "kept"),
    [("1", True, True), ("1", False, False), ("always", False, True), ("0", True, False)],
)
def test_keep_namespace_on_failure(monkeypatch, policy: str, fail: bool, kept: bool):
    monkeypatch.setenv("HA_BENCH_KEEP_NAMESPACE", policy)
    api = FakeCluster()
    try:
        with owned_cluster(api):
            if fail:
                raise RuntimeError("the experiment broke")
    except RuntimeError:
        pass
    deleted = "delete_namespace" in [c[0] for c in api.mutations()]
    assert deleted is not kept
    if kept:
        notes = api.objects[("Namespace", "ha-bench")]["metadata"]["annotations"]
        assert notes[namespaces.KEPT] == (
            "RuntimeError: the experiment broke" if fail else "HA_BENCH_KEEP_NAMESPACE=always"
        )


def test_kind_gc_deletes_only_stale_namespaces(capsys, monkeypatch):
    api = FakeApi()
    api.put(namespace("ha-bench", **{"ha-bench/kept": "x"}))
    api.put(namespace("ha-bench-live", **{"ha-bench/owner": "u@elsewhere pid 1",
                                          "ha-bench/expires": "2999-01-01T00:00:00Z"}))  # fmt: skip
    api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    said: list[str] = []
    removed = namespaces.gc_context("kind-ha-bench", api=api, say=said.append)
    assert removed == [("ha-bench", "kept after a failure (x)")]
    assert [c[1] for c in api.mutations()] == [("ha-bench",)]
    assert any("namespace ha-bench-live is in use by u@elsewhere pid 1" in s for s in said)
    calls: list[str] = []
    monkeypatch.setattr(namespaces, "gc_context", lambda context: calls.append(context) or [])
    assert main(["kind", "gc", "--name", "bench"]) == 0
    assert calls == ["kind-bench"]
    assert "kind cluster bench: 0 stale namespace(s) deleted" in capsys.readouterr().out


def test_the_logs_directory_defaults_to_the_environment(tmp_path: Path, monkeypatch):
    """ha-bench run and pytest experiments/ do not pass logs_dir to this platform yet:
    $HA_BENCH_K8S_LOGS_DIR (the nightly sets it) is where the evidence goes then, one
    directory per cluster."""
    monkeypatch.setenv("HA_BENCH_K8S_LOGS_DIR", str(tmp_path))
    for _ in range(2):
        with owned_cluster(FakeCluster()) as cluster:
            assert cluster.logs_dir == tmp_path
    kept = sorted(d.name for d in (tmp_path / "kubernetes").iterdir())
    assert len(kept) == 2 and kept[0] == "ha-bench" and kept[1].startswith("ha-bench-")


def test_replica_logs_are_read_per_replica_current_and_previous_with_kubelet_stamps():
    """The kubelet's ``timestamps=true`` lines of the current and the previous container,
    by replica name, and turned into ``log`` events only from the mark on."""
    from harness.observe.replica_logs import log_events

    api = FakeCluster()
    pod = "airflow-api-server-6f7d8-00000"
    old = "2026-12-01T12:00:00.000000000Z 2026-12-01T12:00:00.000000Z [error    ] before\n"
    new = ("2026-12-01T12:10:00.100000000Z 2026-12-01T12:10:00.000000Z [error    ] API server "
           "error [supervisor] status_code=503\n")  # fmt: skip
    api.logs[(pod, "api-server", True)] = old
    api.logs[(pod, "api-server", False)] = new
    with owned_cluster(api) as cluster:
        read = dict(cluster.replica_log_lines(cluster.replica_log_mark()))
        replica = cluster.state.read(lambda t: t.replica_names("api-server"))[0]
    assert read[replica] == [old.rstrip("\n"), new.rstrip("\n")]
    assert len(read) == 9  # every pod of the cluster, Job pods by their own name
    since = dt.datetime(2026, 12, 1, 12, 5, tzinfo=dt.UTC).timestamp()
    events, counts = log_events(replica, read[replica], since)
    assert counts == {"execution_api": 1} and events[0]["level"] == "error"
