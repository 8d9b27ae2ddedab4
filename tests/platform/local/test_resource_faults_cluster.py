"""The resource, clock and disk faults on a real local Airflow cluster (slow: `-m cluster`).

Every Airflow process — Celery pool and task processes included — runs in its replica's
cgroup; a throttled scheduler gets its quota; a frozen api-server leaves HAProxy's
rotation and comes back; a skewable scheduler runs under libfaketime (its sleeps work)
and its SchedulerJob heartbeat moves with the skew; a full PostgreSQL disk fails writes
and the cluster recovers once it is freed; an OOM kill in a worker's cgroup with an OOM
group takes the whole worker, recorded as ``oom_killed``; nothing is left afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from harness.platform.local.cgroups import detect
from harness.platform.local.cluster import LocalCluster, lb_server_states
from harness.platform.local.disk import cluster_mounts
from harness.platform.local.process import CLUSTER_VAR, find_processes
from harness.run.testing import SMALL

HIERARCHY, NOTE = detect()
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(HIERARCHY is None or not HIERARCHY.limits, reason=NOTE),
]
TOPOLOGY = SMALL.with_overrides(api_servers=2, clock_skew_replicas=["scheduler-0"],
                                postgres_disk_mb=256)  # fmt: skip


def _wait(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s:g} s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("resource-faults")
    with LocalCluster(TOPOLOGY, logs_dir=logs) as running:
        events: list[dict] = []
        running.bus.subscribe(events.append)
        running.events = events  # type: ignore[attr-defined]
        yield running
    cluster_id = running.cluster_id
    assert running.leftover_kernel_state() == []
    assert find_processes(marker=(CLUSTER_VAR, cluster_id)) == []
    assert cluster_mounts(cluster_id) == []


def test_every_process_of_every_replica_is_in_its_cgroup(cluster):
    for name, replica in cluster.replicas.items():
        unit = replica.unit
        assert unit is not None and replica.spec.cgroup is not None, name
        scanned = set(unit.members())
        in_cgroup = set(replica.spec.cgroup.members())
        assert unit.pid in in_cgroup, name
        # a process may have ended between the two reads: only the live ones count
        outside = {p for p in scanned - in_cgroup if Path(f"/proc/{p}").exists()}
        assert outside <= set(replica.spec.cgroup.pids()), (name, outside)
    worker = cluster.replica("worker-0").spec.cgroup
    assert len(worker.members()) >= 3, "the Celery main process and its pool"


def test_a_throttled_scheduler_gets_its_quota_and_keeps_running(cluster):
    cgroup = cluster.replica("scheduler-0").spec.cgroup
    cluster.nemesis.cpu_throttle("scheduler-0", 0.05)
    try:
        used, start = cgroup.cpu_usage_s(), time.monotonic()
        time.sleep(5)
        share = (cgroup.cpu_usage_s() - used) / (time.monotonic() - start)
        assert share <= 0.05 * 1.2, share
    finally:
        done = cluster.nemesis.cpu_clear("scheduler-0")
    assert done["detail"]["nr_throttled"] > 0
    assert cluster.replica("scheduler-0").unit.popen.poll() is None


def test_a_frozen_api_server_leaves_the_lb_and_comes_back_on_thaw(cluster):
    def states() -> dict[str, bool]:
        return lb_server_states(cluster.ports["lb_stats"], host=cluster.address("haproxy"))

    _wait(lambda: states().get("api-server-0"), 60, "api-server-0 in the LB")
    cluster.nemesis.freeze("api-server-0")
    try:
        _wait(lambda: states().get("api-server-0") is False, 5, "out of the LB")
        assert states().get("api-server-1"), "the other one serves"
    finally:
        cluster.nemesis.thaw("api-server-0")
    _wait(lambda: states().get("api-server-0"), 30, "back in the LB")
    assert cluster.replica("api-server-0").incarnation == 1, "frozen, not restarted"


def _scheduler_heartbeat_offsets(cluster) -> list[float]:
    """Seconds each running SchedulerJob's latest heartbeat is ahead of the true clock."""
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT latest_heartbeat FROM job WHERE job_type = 'SchedulerJob' AND state = 'running'"
        ).fetchall()
    now = datetime.now(UTC)
    return [(hb - now).total_seconds() for (hb,) in rows]


def test_a_skewable_scheduler_runs_under_libfaketime_and_its_heartbeat_moves(cluster):
    replica = cluster.replica("scheduler-0")
    maps = Path(f"/proc/{replica.unit.pid}/maps").read_text()
    assert "libfaketime" in maps, "the preload is loaded"
    assert replica.spec.env["DONT_FAKE_MONOTONIC"] == "1"
    time.sleep(10)
    assert replica.ready and replica.incarnation == 1, "its sleeps work under the preload"
    assert all(abs(o) < 15 for o in _scheduler_heartbeat_offsets(cluster))
    cluster.nemesis.clock_skew("scheduler-0", 120)
    try:
        _wait(lambda: max(_scheduler_heartbeat_offsets(cluster)) > 100, 30,
              "a SchedulerJob heartbeat ~120 s ahead")  # fmt: skip
    finally:
        cluster.nemesis.clock_reset("scheduler-0")
    assert replica.incarnation == 1


def test_a_full_postgres_disk_fails_writes_and_the_cluster_recovers(cluster):
    admin = cluster.dsn.rpartition("/")[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ha_bench_fill (x text)")
    cluster.nemesis.disk_fill("postgres")
    try:
        with (
            pytest.raises(psycopg.Error, match="No space left on device"),
            psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn,
        ):
            conn.execute("INSERT INTO ha_bench_fill SELECT repeat('x', 1000) "
                         "FROM generate_series(1, 100000)")  # fmt: skip
    finally:
        cluster.nemesis.disk_free("postgres")
    _wait(lambda: all(r.ready for r in cluster.replicas.values()), 180, "every replica ready")


HOG = "b = []\nwhile True: b.append(bytearray(1 << 20))"


def test_an_oom_kill_with_an_oom_group_takes_the_whole_worker(cluster):
    replica = cluster.replica("worker-0")
    cgroup = replica.spec.cgroup
    before = replica.incarnation
    usage = cgroup.memory_usage()
    done = cluster.nemesis.memory_limit("worker-0", usage + 64 * 2**20, oom_group=True)
    assert done["detail"]["oom_group"] in ("kernel", "harness")
    hog = subprocess.Popen([sys.executable, "-c", HOG])  # the largest process: killed first
    try:
        cgroup.add(hog.pid)
        hog.wait(60)
        _wait(lambda: [e for e in cluster.events if e.get("replica") == "worker-0"
                       and e.get("state") == "exited" and e.get("incarnation") == before],
              30, "the worker's exit")  # fmt: skip
    finally:
        hog.kill()
        cluster.nemesis.memory_clear("worker-0")
    exited = next(e for e in cluster.events if e.get("replica") == "worker-0"
                  and e.get("state") == "exited" and e.get("incarnation") == before)  # fmt: skip
    assert exited["oom_killed"] is True and exited["oom_kills"] >= 1
    _wait(lambda: replica.incarnation > before and replica.ready, 120, "the worker restarted")
