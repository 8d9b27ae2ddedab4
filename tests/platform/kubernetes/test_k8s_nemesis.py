"""Kubernetes faults: the adapter calls each op makes and the events it records (a kill is
a SIGKILL of the processes, then its death event, then the pod's delete)."""

from __future__ import annotations

from typing import Any

import pytest
from test_k8s_fakes import FakeApi, load, watch_events

from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.platform.kubernetes.api import KubeApiError
from harness.platform.kubernetes.events import LifecycleTracker, WatchedState
from harness.platform.kubernetes.manifests import PART_OF
from harness.platform.kubernetes.nemesis import KubernetesNemesis
from harness.platform.kubernetes.safety import GuardedApi, Scope

NS = "ha-bench"
A = "airflow-api-server-7d9f8c6b5d-x2x9q"
A_UID = "5f0c2a7e-1d4b-4c3a-9e8f-7a6b5c4d3e21"
POSTGRES = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {
        "name": "postgres",
        "namespace": NS,
        "labels": {**PART_OF, "component": "postgres"},
    },
    "spec": {"replicas": 1},
}


class FakeRuntime:
    """A kind node's runtime: records each kill, answers as crictl does."""

    def __init__(self) -> None:
        self.killed: list[tuple[str, str]] = []

    def kill(self, node: str, container: str) -> dict[str, Any]:
        self.killed.append((node, container))
        return {
            "container_id": container.split("://")[-1][:13],
            "finished_at": "2026-01-12T09:01:50.123456789Z",
            "exit_code": 137,
            "state": "CONTAINER_EXITED",
        }


class Rig:
    """A nemesis over a fake adapter and a state holding two ready api-server pods."""

    def __init__(self, *, owned: bool = True, **nemesis: Any) -> None:
        self.api = FakeApi(objects=[POSTGRES])
        self.bus = EventBus()
        self.events: list[dict[str, Any]] = []
        self.bus.subscribe(self.events.append)
        self.state = WatchedState(
            LifecycleTracker({"api-server": 2, "postgres": 1}),
            emit=lambda e: self.bus.emit("lifecycle", **e),
        )
        for e in watch_events(load("kill-api-server.json"))[:3]:
            feed = self.state.pod_event if e["watch"] == "pods" else self.state.slice_event
            feed(e["type"], e["object"])
        self.api.on_delete = self._deleted  # the cluster's side: the watch sees it go
        self.events.clear()
        scope = Scope(NS, dict(PART_OF)) if owned else Scope(NS, {"release": "ha-bench"})
        self.nemesis = KubernetesNemesis(
            GuardedApi(self.api, scope, owned=owned),
            self.state,
            self.bus,
            workloads={"postgres": ("StatefulSet", "postgres")},
            wait_s=1.0,
            **nemesis,
        )

    @property
    def faults(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == "fault"]

    def timeline(self) -> list[tuple[str, ...]]:
        """(type, op or state, phase or source) of every event after the setup."""
        out = []
        for e in self.events:
            if e["type"] == "fault":
                out.append(("fault", e["op"], e["phase"]))
            elif e["type"] == "lifecycle" and e["pod"] == A:
                out.append(("lifecycle", e["state"], e.get("source", "watch")))
        return out

    def _deleted(self, name: str, uid: str) -> None:
        pod = next(
            p for p in self.state.read(lambda t: t.live_pods()) if p["metadata"]["uid"] == uid
        )
        self.state.pod_event("DELETED", pod)

    def phases(self) -> list[tuple[str, str, str]]:
        return [(e["op"], e["target"], e["phase"]) for e in self.faults]


def test_kill_is_a_sigkill_then_the_death_event_then_the_delete():
    rig = Rig()
    done = rig.nemesis.kill("api-server-0")
    (exec_call, delete_call) = rig.api.mutations()
    assert exec_call[1][:3] == (NS, A, "api-server")
    assert exec_call[1][3][-3:] == ["ha-bench-signal", "KILL", "10"]
    assert delete_call == ("delete_pod", (NS, A), {"uid": A_UID, "grace_s": 0})
    assert rig.timeline() == [
        ("fault", "kill", "invoke"),
        ("lifecycle", "exited", "nemesis"),  # the process death, before the delete
        ("lifecycle", "not_ready", "watch"),  # the watch sees the pod go
        ("lifecycle", "deleted", "watch"),
        ("fault", "kill", "ok"),
    ]
    death = next(e for e in rig.events if e["type"] == "lifecycle" and e["state"] == "exited")
    assert (death["exit_code"], death["reason"], death["via"]) == (137, "SIGKILL", "exec")
    assert death["replica"] == "api-server-0" and death["incarnation"] == 1
    invoke, ok = rig.faults
    assert invoke["op_id"] == ok["op_id"] and invoke["pod"] == A and invoke["incarnation"] == 1
    detail = ok["detail"]
    assert (detail["signal"], detail["via"], detail["pod"]) == ("SIGKILL", "exec", A)
    assert detail["died_after_s"] >= 0 and detail["deleted_after_s"] is not None
    assert detail["replaced_by"] == "ReplicaSet airflow-api-server-7d9f8c6b5d"
    assert detail["containers"]["api-server"]["exec_exit"] == 137
    assert done is ok
    assert not rig.state.read(lambda t: t.is_ready("api-server-0"))


def test_kill_through_the_nodes_runtime_records_when_the_container_ended():
    runtime = FakeRuntime()
    rig = Rig(runtime=runtime)
    rig.nemesis.kill("api-server-0")
    assert [c[0] for c in rig.api.mutations()] == ["delete_pod"]  # no exec
    ((node, container),) = runtime.killed
    assert node == "ha-bench-control-plane" and container.startswith("containerd://")
    death = next(e for e in rig.events if e["type"] == "lifecycle" and e["state"] == "exited")
    assert death["via"] == "runtime" and death["died_at"] == "2026-01-12T09:01:50.123456789Z"
    assert rig.faults[-1]["detail"]["node"] == "ha-bench-control-plane"
    # exec only, even with a runtime at hand
    rig = Rig(runtime=runtime, kill_via="exec")
    rig.nemesis.kill("api-server-0")
    assert [c[0] for c in rig.api.mutations()] == ["exec", "delete_pod"]
    with pytest.raises(HarnessError, match="needs a node runtime"):
        Rig(kill_via="runtime")


def test_kill_refused_when_pid_1_is_not_an_init_and_nothing_is_deleted():
    rig = Rig()
    rig.api.exec_results = [(3, "pid1=airflow\n", "")]
    with pytest.raises(HarnessError, match=r"cannot SIGKILL api-server-0 through exec.*'airflow'"):
        rig.nemesis.kill("api-server-0")
    assert [c[0] for c in rig.api.mutations()] == ["exec"]
    assert rig.timeline() == [("fault", "kill", "invoke"), ("fault", "kill", "fail")]


def test_a_container_that_outlives_sigkill_is_an_unknown_outcome_not_a_kill():
    rig = Rig()
    rig.api.exec_results = [(4, "signalled=3\nsurvived\n", "")]
    with pytest.raises(RuntimeError, match="still ran 10 s after"):
        rig.nemesis.kill("api-server-0")
    assert [c[0] for c in rig.api.mutations()] == ["exec"]  # not deleted
    assert rig.timeline() == [("fault", "kill", "invoke"), ("fault", "kill", "info")]


def test_a_kill_whose_exec_ends_without_a_status_is_a_death():
    """The exec dies with the container: often no status at all (api.exec_status)."""
    rig = Rig()
    rig.api.exec_results = [(None, "signalled=7\n", "[exec: no exit status (the exec stream "
                             "closed without one)]")]  # fmt: skip
    rig.nemesis.kill("api-server-0")
    assert rig.timeline()[1] == ("lifecycle", "exited", "nemesis")
    assert rig.faults[-1]["detail"]["containers"]["api-server"]["exec_exit"] is None


def test_force_delete_deletes_with_grace_zero_and_claims_no_death():
    rig = Rig()
    done = rig.nemesis.force_delete("api-server-0")
    assert rig.api.mutations() == [("delete_pod", (NS, A), {"uid": A_UID, "grace_s": 0})]
    assert rig.faults[0]["op"] == "force_delete" and done["detail"]["grace_s"] == 0
    assert done["detail"]["deleted_after_s"] is not None
    assert ("lifecycle", "exited", "nemesis") not in rig.timeline()


def test_terminate_uses_the_pods_grace_or_the_given_one():
    rig = Rig()
    rig.nemesis.terminate("api-server-0")
    rig.nemesis.terminate("api-server-1", grace_s=2.5)
    assert [(c[1][1], c[2]["grace_s"]) for c in rig.api.mutations()] == [
        (A, 30),  # spec.terminationGracePeriodSeconds
        ("airflow-api-server-7d9f8c6b5d-k4m7p", 3),  # whole seconds, rounded up
    ]
    assert [f["phase"] for f in rig.faults] == ["invoke", "ok", "invoke", "ok"]
    assert rig.faults[2]["grace_s"] == 2.5 and rig.faults[3]["detail"]["graceful"] is True


def test_eviction_refused_by_a_pdb_is_a_fail_event():
    rig = Rig()
    rig.api.errors["evict_pod"] = KubeApiError(
        429,
        "Too Many Requests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    )
    with pytest.raises(HarnessError, match="refused by a PodDisruptionBudget"):
        rig.nemesis.evict("api-server-0")
    assert rig.phases() == [("evict", "api-server-0", "invoke"), ("evict", "api-server-0", "fail")]
    assert "disruption budget" in rig.faults[1]["detail"]
    assert rig.state.read(lambda t: t.is_ready("api-server-0"))  # nothing happened


def test_eviction_allowed():
    rig = Rig()
    rig.nemesis.evict("api-server-1")
    assert rig.api.mutations()[0][0] == "evict_pod"
    assert rig.phases()[-1] == ("evict", "api-server-1", "ok")


def test_api_errors_fail_or_info():
    rig = Rig()
    rig.api.errors["delete_pod"] = KubeApiError(409, "Conflict", "uid precondition failed")
    with pytest.raises(HarnessError, match="refused by the API"):
        rig.nemesis.force_delete("api-server-0")
    rig.api.errors["delete_pod"] = KubeApiError(None, "unreachable", "timed out")
    with pytest.raises(KubeApiError):
        rig.nemesis.force_delete("api-server-0")
    assert [f["phase"] for f in rig.faults] == ["invoke", "fail", "invoke", "info"]


def test_pause_checks_every_container_then_stops_its_processes():
    rig = Rig()
    rig.api.exec_results = [(0, "", ""), (0, "signalled=7\n", ""), (0, "signalled=7\n", "")]
    rig.nemesis.pause("api-server-0")
    rig.nemesis.resume("api-server-0")
    execs = [c[1] for c in rig.api.mutations()]
    assert [(pod, container, cmd[:2], cmd[-1]) for _, pod, container, cmd in execs] == [
        (A, "api-server", ["sh", "-c"], "CHECK"),
        (A, "api-server", ["sh", "-c"], "STOP"),
        (A, "api-server", ["sh", "-c"], "CONT"),
    ]
    assert rig.faults[1]["detail"]["signalled"] == {"api-server": 7}
    assert rig.faults[1]["detail"]["signal"] == "SIGSTOP"
    assert rig.phases()[-1] == ("resume", "api-server-0", "ok")


def test_pause_is_refused_when_pid_1_is_not_an_init():
    rig = Rig()
    rig.api.exec_results = [(3, "pid1=airflow\n", "")]
    with pytest.raises(HarnessError, match="PID 1 of container api-server is 'airflow'"):
        rig.nemesis.pause("api-server-0")
    assert len(rig.api.mutations()) == 1  # the check only: nothing was signalled
    assert rig.phases()[-1] == ("pause", "api-server-0", "fail")


def test_stop_and_start_service_scale_the_statefulset_and_back():
    rig = Rig()
    rig.nemesis.stop_service("postgres")
    rig.nemesis.start_service("postgres")
    assert rig.api.mutations() == [
        ("scale", ("StatefulSet", NS, "postgres", 0), {}),
        ("scale", ("StatefulSet", NS, "postgres", 1), {}),
    ]
    assert rig.phases() == [
        ("stop_service", "postgres", "invoke"),
        ("stop_service", "postgres", "ok"),
        ("start_service", "postgres", "invoke"),
        ("start_service", "postgres", "ok"),
    ]
    assert rig.faults[1]["detail"]["previous_replicas"] == 1
    assert rig.faults[3]["detail"] == {"workload": "StatefulSet/postgres", "replicas": 1}


def test_existing_mode_refuses_scaling():
    rig = Rig(owned=False)
    with pytest.raises(HarnessError, match="'existing' mode"):
        rig.nemesis.stop_service("postgres")
    assert rig.api.mutations() == []
    assert rig.phases() == [
        ("stop_service", "postgres", "invoke"),
        ("stop_service", "postgres", "fail"),
    ]


def test_unknown_targets_and_replicas_without_a_pod():
    rig = Rig()
    with pytest.raises(HarnessError, match="no replica named 'api-server-7'"):
        rig.nemesis.kill("api-server-7")
    assert rig.faults == []  # like local: an unknown name records nothing
    with pytest.raises(HarnessError, match="postgres has no running pod"):
        rig.nemesis.kill("postgres")  # expected, but no pod seen
    assert rig.phases() == [("kill", "postgres", "invoke"), ("kill", "postgres", "fail")]
    with pytest.raises(HarnessError, match="no workload for 'scheduler'"):
        rig.nemesis.scale_to_zero("scheduler")


def test_a_pod_name_target_is_recorded_as_its_replica():
    """The ledger names pods (HA_BENCH_REPLICA is the pod name): victim targeting."""
    rig = Rig()
    rig.nemesis.kill("airflow-api-server-7d9f8c6b5d-k4m7p")
    invoke = rig.faults[0]
    assert (invoke["target"], invoke["requested"]) == (
        "api-server-1",
        "airflow-api-server-7d9f8c6b5d-k4m7p",
    )
    assert rig.api.mutations()[0][1][1] == "airflow-api-server-7d9f8c6b5d-k4m7p"


def test_force_delete_is_refused_by_the_local_platform_recording_nothing():
    from harness.platform.base import FAULT_OPS, Nemesis
    from harness.platform.local.nemesis import LocalNemesis

    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe(seen.append)
    local = LocalNemesis(lambda name: pytest.fail("no replica is looked up"), bus)
    assert isinstance(local, Nemesis) and "force_delete" in FAULT_OPS
    with pytest.raises(HarnessError) as err:
        local.force_delete("api-server-0")
    assert "\n" not in str(err.value) and "local platform has no pod objects" in str(err.value)
    assert "use kill (SIGKILL) or terminate (SIGTERM)" in str(err.value)
    assert seen == []
