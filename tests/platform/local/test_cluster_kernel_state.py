"""The local cluster's kernel state on real, small processes: each replica in its own cgroup,
PostgreSQL on a size-limited disk that disk_fill fills, a skewable replica — and nothing
left (no process, cgroup or mount) after a normal stop, an exception, or a SIGKILL of the
harness (the watchdog).

Only the services run (PostgreSQL with a tiny data directory, Redis, HAProxy) plus one
small Python process standing in for ``scheduler-0``: no Airflow component starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
import servicesonly

from harness.core.topology import Topology
from harness.platform.local.cgroups import detect
from harness.platform.local.cluster import LocalCluster
from harness.platform.local.disk import cluster_mounts
from harness.platform.local.process import CLUSTER_VAR, find_processes

HIERARCHY, NOTE = detect()
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or HIERARCHY is None, reason=f"needs root and cgroups: {NOTE}"
)

TOPOLOGY = Topology(api_servers=1, schedulers=1, dag_processors=0, triggerers=0, workers=1,
                    postgres_disk_mb=64, clock_skew_replicas=["scheduler-0"])  # fmt: skip
# scheduler-0's stand-in: writes its wall clock minus the real one... it cannot know the
# real one, so it writes both of its clocks; the test compares them with its own
CLOCKS = (
    "import json, sys, time\n"
    "while True:\n"
    "    with open(sys.argv[1] + '.tmp', 'w') as f:\n"
    "        json.dump([time.time(), time.monotonic()], f)\n"
    "    __import__('os').replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "    time.sleep(0.1)\n"
)

SERVICES_ONLY = servicesonly.source(
    """
    def _stand_ins(self):
        clocks = self.data_dir / "clocks.json"
        return [self._spec("scheduler-0", "scheduler",
                           [sys.executable, "-c", CLOCKS, str(clocks)])]
    """
)


def _services_only(monkeypatch) -> None:
    servicesonly.patch(monkeypatch, SERVICES_ONLY, CLOCKS=CLOCKS)


def _cgroup_dirs(cluster_id: str) -> list[Path]:
    assert HIERARCHY is not None
    return [p / cluster_id for p in HIERARCHY.parents.values() if (p / cluster_id).exists()]


def _nothing_left(cluster_id: str, data_dir: Path | None, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        left = {
            "processes": find_processes(marker=(CLUSTER_VAR, cluster_id)),
            "cgroups": _cgroup_dirs(cluster_id),
            "mounts": cluster_mounts(cluster_id),
            "data_dir": data_dir if data_dir is not None and data_dir.exists() else None,
        }
        if not any(left.values()):
            return
        assert time.monotonic() < deadline, f"left behind: {left}"
        time.sleep(0.2)


def test_replicas_run_in_their_cgroups_and_postgres_gets_enospc_from_disk_fill(monkeypatch):
    _services_only(monkeypatch)
    events: list[dict] = []
    with LocalCluster(TOPOLOGY) as cluster:
        cluster.bus.subscribe(events.append)
        assert cluster.cgroups is not None
        for name, replica in cluster.replicas.items():
            members = replica.spec.cgroup.members()
            assert replica.unit.pid in members, name
            assert set(replica.unit.members()) >= set(members)
        assert len(cluster.replica("postgres").spec.cgroup.members()) > 3  # its backends too
        assert cluster.metadata()["cgroups"]["version"] == HIERARCHY.version
        assert cluster.postgres_disk.mounted()
        nemesis = cluster.nemesis
        admin = cluster.dsn.rpartition("/")[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x text)")
        filled = nemesis.disk_fill("postgres")
        assert filled["detail"]["free_after"] < 64 * 1024
        big = "INSERT INTO t SELECT repeat('x', 1000) FROM generate_series(1, 20000)"
        with (
            pytest.raises(psycopg.Error, match="No space left on device"),
            psycopg.connect(admin, autocommit=True) as conn,
        ):
            conn.execute(big)
        nemesis.disk_free("postgres")
        small = "INSERT INTO t SELECT repeat('x', 1000) FROM generate_series(1, 1000)"
        deadline = time.monotonic() + 90  # PostgreSQL may have PANICked and be restarting
        while True:
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(small)
                break
            except psycopg.Error as exc:
                assert time.monotonic() < deadline, f"PostgreSQL did not recover: {exc}"
                time.sleep(0.5)
        # the skewable stand-in: its wall clock moves, its monotonic clock does not
        clocks = cluster.data_dir / "clocks.json"

        def skew() -> tuple[float, float]:
            time.sleep(0.3)
            wall, mono = json.loads(clocks.read_text())
            return wall - time.time(), mono - time.monotonic()

        assert abs(skew()[0]) < 1
        nemesis.clock_skew("scheduler-0", 60)
        time.sleep(0.3)
        wall, mono = skew()
        assert abs(wall - 60) < 1 and abs(mono) < 1
        nemesis.clock_reset("scheduler-0")
        time.sleep(0.3)
        assert abs(skew()[0]) < 1
        cluster_id, data_dir = cluster.cluster_id, cluster.data_dir
    assert cluster.leftover_kernel_state() == []
    _nothing_left(cluster_id, data_dir, timeout_s=5)
    ops = [(e["op"], e["phase"]) for e in events if e["type"] == "fault"]
    assert ops == [(op, phase) for op in ("disk_fill", "disk_free", "clock_skew", "clock_reset")
                   for phase in ("invoke", "ok")]  # fmt: skip


def test_redis_comes_back_from_the_snapshot_after_a_kill_and_not_in_the_next_repetition(
    monkeypatch,
):
    import redis

    from harness.core.errors import HarnessError
    from harness.core.polling import poll

    _services_only(monkeypatch)
    with LocalCluster(TOPOLOGY) as cluster:
        client = redis.Redis(
            host=cluster.address("redis"), port=cluster.ports["redis"], socket_timeout=5
        )
        client.rpush("default", "queued-before")
        taken = cluster.nemesis.snapshot("redis")["detail"]
        assert (taken["queued_messages"], taken["keys"]) == (1, 1)
        client.rpush("default", "queued-after")  # lost with the newer data

        def restarted_with() -> list[bytes] | None:
            try:
                return client.lrange("default", 0, -1)
            except redis.RedisError:
                return None

        def kill_and_read() -> list[bytes]:
            incarnation = cluster.replica("redis").incarnation
            cluster.nemesis.kill("redis")
            assert poll(lambda: cluster.replica("redis").incarnation > incarnation
                        and cluster.replica("redis").ready, timeout_s=30)  # fmt: skip
            seen = poll(restarted_with, timeout_s=10)
            assert seen is not None, "Redis did not answer after its restart"
            return seen

        assert kill_and_read() == [b"queued-before"]
        cluster.prepare_repetition()  # the next repetition starts without the snapshot
        client.rpush("default", "next-repetition")
        assert kill_and_read() == []
        client.close()
        with pytest.raises(HarnessError, match="only Redis"):
            cluster.nemesis.snapshot("postgres")


def test_nothing_is_left_after_an_exception(monkeypatch):
    _services_only(monkeypatch)
    seen: dict = {}
    with pytest.raises(RuntimeError, match="the run failed"), LocalCluster(TOPOLOGY) as cluster:
        seen.update(cluster_id=cluster.cluster_id, data_dir=cluster.data_dir)
        cluster.nemesis.freeze("redis")  # even a frozen replica
        cluster.nemesis.cpu_throttle("postgres", 0.1)
        assert _cgroup_dirs(cluster.cluster_id) and cluster_mounts(cluster.cluster_id)
        raise RuntimeError("the run failed")
    _nothing_left(seen["cluster_id"], seen["data_dir"], timeout_s=5)


HARNESS = textwrap.dedent(
    """
    import json, sys, time
    from harness.core.topology import Topology
    {services_only}
    topology = Topology.model_validate_json(sys.argv[1])
    cluster = LocalCluster(topology)
    cluster.start()
    cluster.nemesis.freeze("redis")
    cluster.nemesis.disk_fill("postgres")
    print(json.dumps({{"cluster_id": cluster.cluster_id, "data_dir": str(cluster.data_dir)}}),
          flush=True)
    time.sleep(600)
    """
)


def test_the_watchdog_removes_everything_after_a_sigkill_of_the_harness(tmp_path):
    harness = servicesonly.start_harness(
        tmp_path / "owner.py", HARNESS, SERVICES_ONLY, TOPOLOGY, programs={"CLOCKS": CLOCKS}
    )
    try:
        line = harness.stdout.readline()
        assert line, "the harness did not start its cluster"
        started = json.loads(line)
        cluster_id = started["cluster_id"]
        assert _cgroup_dirs(cluster_id) and cluster_mounts(cluster_id)
        assert find_processes(marker=(CLUSTER_VAR, cluster_id))
    finally:
        harness.send_signal(signal.SIGKILL)  # no unwinding: only the watchdog is left
        harness.wait()
    _nothing_left(cluster_id, Path(started["data_dir"]), timeout_s=40)


CTRL_C = textwrap.dedent(
    """
    import json, sys, time
    from harness.core.topology import Topology
    {services_only}
    topology = Topology.model_validate_json(sys.argv[1])
    with LocalCluster(topology) as cluster:
        cluster.nemesis.freeze("redis")
        cluster.nemesis.disk_fill("postgres")
        print(json.dumps({{"cluster_id": cluster.cluster_id,
                           "data_dir": str(cluster.data_dir)}}), flush=True)
        time.sleep(600)
    """
)


def test_nothing_is_left_after_a_ctrl_c_of_the_harness(tmp_path):
    harness = servicesonly.start_harness(
        tmp_path / "owner.py",
        CTRL_C,
        SERVICES_ONLY,
        TOPOLOGY,
        programs={"CLOCKS": CLOCKS},
        stderr=subprocess.PIPE,
    )
    try:
        line = harness.stdout.readline()
        assert line, f"the harness did not start its cluster: {harness.stderr.read()[-2000:]}"
        started = json.loads(line)
        harness.send_signal(signal.SIGINT)  # Ctrl-C: KeyboardInterrupt unwinds the with
        assert harness.wait(60) != 0
        # its own stop() cleaned up, before the watchdog could
        assert not _cgroup_dirs(started["cluster_id"])
        assert not cluster_mounts(started["cluster_id"])
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    _nothing_left(started["cluster_id"], Path(started["data_dir"]), timeout_s=10)
