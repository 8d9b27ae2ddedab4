"""Live tests on a kind cluster (``ha-bench kind up``; the nightly workflow runs them):
bring-up, a bad tag reported within seconds, the ledger round trip, and each fault op
(kill by exec and by the node's runtime, force_delete, terminate, evict, pause/resume,
stop_service/start_service) with what the platform shows of it.

Skipped, with the reason, where no kind cluster answers. With ``HA_BENCH_RECORD_DIR`` set,
each fault's watch streams are recorded there in the fixture format
(``tests/data/k8s/recorded/README.md``), plus a relist after an ERROR 410.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.core.errors import HarnessError
from harness.core.topology import Topology
from harness.platform.kubernetes.cluster import BringUpError, KubernetesCluster
from harness.platform.kubernetes.kind import default_ledger_dir, kind_name_of
from harness.platform.kubernetes.nemesis import KubernetesNemesis
from harness.platform.kubernetes.recorder import Recorder

pytestmark = pytest.mark.kind

SMALL = Topology(api_servers=2, schedulers=1, dag_processors=1, triggerers=0, workers=1)
READY_S = 600.0
RECORD_DIR = os.environ.get("HA_BENCH_RECORD_DIR")


def live_context() -> str:
    """The kind context to test ($HA_BENCH_KIND_CONTEXT or kind-ha-bench), else a skip."""
    from harness.platform.kubernetes.api import KubeApi

    context = os.environ.get("HA_BENCH_KIND_CONTEXT", "kind-ha-bench")
    try:
        KubeApi(context).server_version()
    except HarnessError as exc:
        pytest.skip(f"no reachable kind cluster ({context}): {exc}")
    return context


def new_cluster(context: str, logs: Path, **kw: Any) -> KubernetesCluster:
    name = kind_name_of(context)
    return KubernetesCluster(
        kw.pop("topology", SMALL),
        context=context,
        ledger_dir=default_ledger_dir(name) if name else None,
        logs_dir=logs,
        log=print,
        **kw,
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesCluster]:
    context = live_context()
    with new_cluster(context, tmp_path_factory.mktemp("live-logs")) as cluster:
        yield cluster


def all_ready(cluster: KubernetesCluster, timeout_s: float = READY_S) -> None:
    names = cluster.replica_names()
    assert cluster.state.wait_for(lambda t: all(t.is_ready(n) for n in names), timeout_s), (
        f"not all ready again: { {n: cluster.is_ready(n) for n in names} }"
    )


def keep(rec: Recorder, name: str, description: str) -> None:
    if RECORD_DIR:
        rec.write(Path(RECORD_DIR) / f"{name}.json", description)


_EVENTS: dict[int, list[dict[str, Any]]] = {}


def cluster_events(cluster: KubernetesCluster) -> list[dict[str, Any]]:
    if id(cluster) not in _EVENTS:
        _EVENTS[id(cluster)] = []
        cluster.bus.subscribe(_EVENTS[id(cluster)].append)
    return _EVENTS[id(cluster)]


# -- bring-up -----------------------------------------------------------------------------
def test_a_bad_tag_is_refused_before_or_reported_within_seconds(tmp_path: Path):
    """First the pre-flight (the registry has no such tag); then, with the pre-flight
    bypassed, the pull error of an init container stops the bring-up within seconds."""
    context = live_context()
    bad = SMALL.with_overrides(airflow_version="9.9.9")
    with (
        pytest.raises(BringUpError, match="does not exist"),
        new_cluster(context, tmp_path, topology=bad),
    ):
        pass
    started = time.monotonic()
    with (
        pytest.raises(BringUpError, match=r"ErrImagePull|ImagePullBackOff"),
        new_cluster(context, tmp_path, topology=bad, image_check=lambda images: ([], [])),
    ):
        pass
    assert time.monotonic() - started < 180  # an apply, a pull attempt, not a 10-minute wait
    assert list((tmp_path / "kubernetes").glob("*/*/describe.txt"))  # evidence kept


def test_bring_up_and_the_ledger_round_trip(live: KubernetesCluster):
    all_ready(live)
    assert live.replica_names("api-server") == ["api-server-0", "api-server-1"]
    assert live.check_ledger() == "host"  # `ha-bench kind up` maps the node's directory
    meta = live.metadata()
    assert meta["ledger_round_trip"] == "host" and meta["server_version"]


# -- faults -------------------------------------------------------------------------------
@pytest.mark.parametrize("via", ["runtime", "exec"])
def test_kill_is_a_sigkill_the_death_then_the_replacement(live: KubernetesCluster, via: str):
    all_ready(live)
    target = "api-server-0" if via == "runtime" else "api-server-1"
    old = live.state.read(lambda t: t.holder(target))
    nemesis = KubernetesNemesis(
        live.api, live.state, live.bus, workloads=live.workloads, kill_via=via,
        runtime=live.nemesis.runtime if via == "runtime" else None,
    )  # fmt: skip
    events = cluster_events(live)
    since = time.monotonic()
    with Recorder(live) as rec:
        done = nemesis.kill(target)
        all_ready(live)
    name = "kill-api-server" if via == "runtime" else "kill-api-server-exec"
    keep(rec, name, f"kill {target} via {via}: SIGKILL, the death, the delete, the replacement")
    assert done["detail"]["via"] == via and done["detail"]["died_after_s"] is not None
    mine = [e for e in events if e["t_mono"] >= since and e.get("replica") == target]
    states = [(e["state"], e.get("source", "watch")) for e in mine]
    death = states.index(("exited", "nemesis"))
    created = next(i for i, e in enumerate(mine) if e["state"] == "created" and e["uid"] != old)
    assert death < created, states  # the process was dead before the replacement existed
    assert live.state.read(lambda t: t.holder(target)) != old


def test_force_delete_removes_the_object_only(live: KubernetesCluster):
    all_ready(live)
    with Recorder(live) as rec:
        done = live.nemesis.force_delete("api-server-0")
        all_ready(live)
    keep(rec, "force-delete-api-server", "force_delete api-server-0 (grace 0)")
    assert done["detail"]["grace_s"] == 0 and done["detail"]["deleted_after_s"] is not None


def test_terminate_is_graceful(live: KubernetesCluster):
    all_ready(live)
    with Recorder(live) as rec:
        done = live.nemesis.terminate("api-server-1")
        all_ready(live)
    keep(rec, "terminate-api-server", "terminate api-server-1 with the pod's grace")
    assert done["detail"]["graceful"] is True


def test_evict_through_the_pdb(live: KubernetesCluster):
    all_ready(live)
    with Recorder(live) as rec:
        done = live.nemesis.evict("api-server-0")
        all_ready(live)
    keep(rec, "evict-api-server", "evict api-server-0 (the PDB allows one)")
    assert done["detail"]["deleted_after_s"] is not None


def test_pause_keeps_the_pod_ready_for_a_short_hold(live: KubernetesCluster):
    """Readiness (period 5 s, timeout 10 s, threshold 3) needs 30 s to notice a hung pod:
    a 10 s pause leaves it Ready and in the EndpointSlice."""
    all_ready(live)
    with Recorder(live) as rec:
        live.nemesis.pause("api-server-0")
        try:
            time.sleep(10)
            assert live.is_ready("api-server-0")
        finally:
            live.nemesis.resume("api-server-0")
        all_ready(live)
    keep(rec, "pause-api-server", "pause api-server-0 for 10 s, then resume")


def test_stop_and_start_service(live: KubernetesCluster):
    all_ready(live)
    done = live.nemesis.stop_service("redis")
    assert done["detail"]["gone_after_s"] is not None
    live.nemesis.start_service("redis")
    all_ready(live)


def test_a_relist_after_410(live: KubernetesCluster):
    with Recorder(live) as rec:
        reason = rec.relist_after_410()
    keep(rec, "relist-after-410", "a pod watch from resourceVersion 1: ERROR 410, a LIST")
    assert reason in ("Expired", "Gone")
