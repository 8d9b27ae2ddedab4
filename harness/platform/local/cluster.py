"""The embedded ``local`` platform: a real HA Airflow cluster as supervised local processes.

PostgreSQL, Redis, HAProxy in front of the api-servers, schedulers, dag-processors,
triggerers and Celery workers — every one a :class:`Replica` supervised like a pod, with
ports picked at run time, in a private directory removed at the end.

Addresses (the topology's ``network``): ``loopback`` — everything on 127.0.0.1. ``pod``
(needs root; without it the cluster says why and falls back to loopback) — a
:class:`~.net.PodNetwork` made before any replica: every replica runs in its own network
namespace (its host, named like the replica) with its own address on the cluster's private
bridge, binds that address and reaches the others by theirs (Airflow's database, broker,
result backend and Execution API URLs, HAProxy's backends); the root namespace is the
network's *client host* ``client`` (one veth, nothing routed), so the harness's readiness
checks, prober, Locust, workload driver and ledger reads reach every host directly. The
addresses are registered with the traffic guard (:mod:`harness.core.netguard`).
:attr:`LocalCluster.lb_url` — what the harness's clients use — is HAProxy's pod address, so
probes take the real path; :attr:`LocalCluster.ui_url` stays ``http://127.0.0.1:<lb
port>`` for a browser, through a relay in the harness process (:mod:`.relay`). Network
faults (partition, latency, loss, bandwidth, heal) need ``pod``.
Each replica runs in its own cgroup where the host allows (:mod:`.cgroups`), named
``<cluster id>/<replica>``; replicas named in the topology's ``clock_skew_replicas`` run
under libfaketime (:mod:`.clock`); with ``postgres_disk_mb`` PostgreSQL keeps its data on
a tmpfs of that size (:mod:`.disk`). Use it as a context manager; nothing it started
outlives it — no process, cgroup or mount (see :mod:`.watchdog` for the case where the
harness itself is killed).

It is longer than the project's other modules because it is the one place that knows how
each part of the reference cluster is started and wired to the others (commands,
environment, ports, HAProxy's configuration, the bring-up order); the supervision, checks,
faults, cgroups, clock and disk live in their own modules.
"""

from __future__ import annotations

import base64
import csv
import glob
import hashlib
import http.client
import io
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import __version__
from harness.core.cleanup import StartStopContext
from harness.core.errors import HarnessError
from harness.core.events import EventBus
from harness.core.netguard import register_hosts, unregister_hosts
from harness.core.polling import poll
from harness.core.topology import Topology
from harness.platform.airflow_env import AirflowEnv, ensure_airflow
from harness.platform.local import checks
from harness.platform.local.cgroups import REGISTRY_FILE, ClusterCgroups, Hierarchy, detect
from harness.platform.local.clock import SkewableClock, find_libfaketime, sleep_is_broken
from harness.platform.local.disk import SizedDisk, cluster_mounts, unmount_cluster
from harness.platform.local.nemesis import LocalNemesis
from harness.platform.local.net import Host, PodNetwork, available, leftover
from harness.platform.local.process import (
    CLUSTER_VAR,
    find_processes,
    free_port,
    port_is_free,
    tail,
)
from harness.platform.local.relay import TcpRelay
from harness.platform.local.supervisor import Replica, ReplicaSpec
from harness.platform.local.watchdog import SESSIONS_FILE, reap_cluster

SERVICES = ("postgres", "redis", "haproxy")
CLIENT_HOST = "client"  # the root namespace's name in the pod network (the harness's host)
REDIS_RDB = "dump.rdb"
_PACKAGES = {"postgres": "postgresql", "initdb": "postgresql", "redis-server": "redis-server",
             "haproxy": "haproxy"}  # fmt: skip


class BringUpError(HarnessError):
    """A replica did not become ready in time."""


def find_binary(name: str) -> str:
    """Absolute path of a server binary, or a HarnessError naming the package to install."""
    path = shutil.which(name)
    if path is None and name in ("postgres", "initdb"):
        candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
        path = candidates[-1] if candidates else None
    if path is None:
        package = _PACKAGES.get(name, name)
        raise HarnessError(
            f"{name} not found on PATH",
            fix=f"install it: `apt-get install {package}` (Debian/Ubuntu), or run scripts/setup.sh",
        )
    return path


class LocalCluster(StartStopContext):
    """A running reference HA cluster; ``with LocalCluster(topology) as c: ...``."""

    platform = "local"

    def __init__(
        self,
        topology: Topology | None = None,
        *,
        logs_dir: Path | None = None,
        bus: EventBus | None = None,
        log: Callable[[str], None] | None = None,
        dags_dir: Path | None = None,
    ) -> None:
        """``dags_dir``: the DAG files to deploy (the workload's; none if ``None``)."""
        self.topology = topology or Topology()
        self._dags_dir = dags_dir
        self.bus = bus or EventBus()
        self._say = log or (lambda msg: None)
        self.cluster_id = f"hab-{os.getpid()}-{secrets.token_hex(4)}"
        self.data_dir: Path | None = None
        self._logs_dir_arg = logs_dir
        self.logs_dir: Path | None = None
        self.replicas: dict[str, Replica] = {}
        self.ports: dict[str, int] = {}
        self._watchdog: subprocess.Popen | None = None
        self._lb_watch_stop = threading.Event()
        self._lb_thread: threading.Thread | None = None
        self._started = False
        self._stopped = False
        self.airflow: AirflowEnv | None = None
        self.timings: dict[str, float] = {}
        self.lb_config: str | None = None  # the HAProxy configuration as written
        self.lb_version: str | None = None
        self.cgroups: ClusterCgroups | None = None  # None: membership by /proc scan
        self.cgroup_note = ""
        self.clocks: dict[str, SkewableClock] = {}  # replicas that may be skewed
        self.postgres_disk: SizedDisk | None = None
        self.network: PodNetwork | None = None  # network: pod (None: loopback)
        self.network_note = ""  # why the cluster runs on loopback although pod was asked
        self._relay: TcpRelay | None = None  # 127.0.0.1:<lb port> -> HAProxy's pod address
        self._network_faults: dict[str, list[str]] = {}  # target -> its active fault ids

    # -- addresses ---------------------------------------------------------------------
    def address(self, name: str) -> str:
        """Where replica (or host) ``name`` listens: its pod-network address, else 127.0.0.1."""
        if self.network is not None and name in self.network.hosts:
            return self.network.hosts[name].address
        return "127.0.0.1"

    @property
    def hosts(self) -> dict[str, Host]:
        """The pod network's hosts by name (``client``: the harness's); empty on loopback."""
        return dict(self.network.hosts) if self.network is not None else {}

    @property
    def lb_url(self) -> str:
        """HAProxy, as the harness's clients reach it (its pod address in pod mode)."""
        return f"http://{self.address('haproxy')}:{self.ports['lb']}"

    @property
    def ui_url(self) -> str:
        """The UI/API URL for a browser: always on 127.0.0.1 (a relay in pod mode)."""
        return f"http://127.0.0.1:{self.ports['lb']}"

    @property
    def stats_url(self) -> str:
        return f"http://{self.address('haproxy')}:{self.ports['lb_stats']}/stats"

    @property
    def api_server_urls(self) -> dict[str, str]:
        return {
            name: f"http://{self.address(name)}:{self.ports[name]}"
            for name, r in self.replicas.items()
            if r.component == "api-server"
        }

    @property
    def ledger_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "ledger.jsonl"

    def ledger_mark(self) -> int:
        """A position in the side-effect ledger; :meth:`ledger_since` reads rows after it."""
        return self.ledger_path.stat().st_size if self.ledger_path.exists() else 0

    def ledger_since(self, mark: int) -> list[dict[str, Any]]:
        """Ledger rows written after ``mark`` (complete lines only)."""
        from harness.core.ledger import parse_ledger

        if not self.ledger_path.exists():
            return []
        with open(self.ledger_path, "rb") as f:
            f.seek(mark)
            return parse_ledger(f.read(), source=str(self.ledger_path))

    @property
    def dsn(self) -> str:
        return self._dsn("airflow")

    def _dsn(self, database: str) -> str:
        """PostgreSQL's URL for ``database``, at its address (pod or loopback)."""
        return (
            f"postgresql://airflow@{self.address('postgres')}:{self.ports['postgres']}/{database}"
        )

    def components(self, component: str) -> list[Replica]:
        return [r for r in self.replicas.values() if r.component == component]

    def replica_names(self, component: str | None = None) -> list[str]:
        """Replica names of one component, or of every replica (services included)."""
        if component is None:
            return list(self.replicas)
        return [r.name for r in self.components(component)]

    def is_ready(self, replica: str) -> bool:
        return self.replica(replica).ready

    def replica_log(self, replica: str) -> Path | None:
        """The log file of ``replica`` (every incarnation appends to it)."""
        return self.replica(replica).spec.log_path

    def replica_log_mark(self) -> dict[str, int]:
        """Where each replica's log ends now (its size), for :meth:`replica_log_lines`."""
        marks = {}
        for name in self.replicas:
            path = self.replica_log(name)
            marks[name] = path.stat().st_size if path is not None and path.exists() else 0
        return marks

    def replica_log_lines(self, mark: dict[str, int]) -> Iterator[tuple[str, list[str]]]:
        """Each replica's log lines written after ``mark`` (from the start of a file that
        shrank), as ``(replica, lines)``."""
        for name in self.replicas:
            path = self.replica_log(name)
            if path is None or not path.exists():
                continue
            with open(path, "rb") as f:
                start = mark.get(name, 0)
                f.seek(start if start <= path.stat().st_size else 0)
                yield name, f.read().decode(errors="replace").splitlines()

    @property
    def nemesis(self) -> LocalNemesis:
        return LocalNemesis(self.replica, self.bus, network=self.network,
                            network_faults=self._network_faults,
                            network_note=self.network_note)  # fmt: skip

    def replica(self, name: str) -> Replica:
        try:
            return self.replicas[name]
        except KeyError:
            known = ", ".join(self.replicas)
            raise HarnessError(f"no replica named {name!r}", fix=f"use one of: {known}") from None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, progress: Callable[[dict[str, bool]], None] | None = None) -> None:
        """Bring the cluster up and block until every replica is ready."""
        if self._started:
            raise RuntimeError("cluster already started")
        self._started = True
        t0 = time.monotonic()
        binaries = {b: find_binary(b) for b in ("postgres", "initdb", "redis-server", "haproxy")}
        self.airflow = ensure_airflow(self.topology.airflow_version, log=self._say)
        self.timings["airflow_env_s"] = time.monotonic() - t0
        self._allocate_ports()  # before anything runs: a fixed port in use is bad input
        self.data_dir = Path(tempfile.mkdtemp(prefix="ha-bench-"))
        self.data_dir.chmod(0o755)  # the postgres user must reach its data directory
        self._start_watchdog()
        self.logs_dir = Path(self._logs_dir_arg or self.data_dir / "logs")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._say(f"cluster {self.cluster_id} in {self.data_dir}")
        self._setup_cgroups()
        self._setup_clocks()
        self._setup_network()  # before any replica: each one starts in its host

        self._start_postgres(binaries["postgres"], binaries["initdb"])
        self._add(self._redis_spec(binaries["redis-server"]), start=True)
        self._wait_ready(["postgres", "redis"], progress, timeout_s=60)
        self.timings["services_s"] = time.monotonic() - t0
        self._prepare_airflow()
        self.timings["db_migrate_s"] = time.monotonic() - t0
        for spec in self._airflow_specs():
            self._add(spec, start=True)
        self._add(self._haproxy_spec(binaries["haproxy"]), start=True)
        if self.network is not None:  # the browser's URL on 127.0.0.1; probes go direct
            target = (self.address("haproxy"), self.ports["lb"])
            self._relay = TcpRelay(("127.0.0.1", self.ports["lb"]), target).start()
        self._lb_thread = threading.Thread(target=self._watch_lb, name="lb-watch", daemon=True)
        self._lb_thread.start()
        self._wait_ready(list(self.replicas), progress, timeout_s=self.topology.startup_timeout_s)
        self.timings["ready_s"] = time.monotonic() - t0
        self.bus.emit("marker", name="cluster_ready", detail=dict(self.timings))

    def stop(self) -> None:
        """Stop everything, verify nothing is left, remove the private directory."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        self._lb_watch_stop.set()
        if self._relay is not None:
            self._relay.close()
        airflow = [r for r in self.replicas.values() if r.component not in SERVICES]
        with ThreadPoolExecutor(max_workers=max(1, len(airflow))) as pool:
            list(pool.map(lambda r: r.stop(), airflow))
        for name in ("haproxy", "redis", "postgres"):
            if name in self.replicas:
                self.replicas[name].stop()
        leftovers = reap_cluster(self.cluster_id, self.data_dir) if self.data_dir else 0
        if leftovers:
            self._say(f"killed {leftovers} leftover cluster processes")
        self._remove_kernel_state()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._watchdog is not None:
            self._watchdog.stdin.close()  # tells the watchdog we are done
            try:
                self._watchdog.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
        self.bus.emit("marker", name="cluster_stopped")

    def leftover_processes(self) -> list[int]:
        """Processes of this cluster still alive (empty after :meth:`stop`)."""
        sessions = [r.unit.pid for r in self.replicas.values() if r.unit is not None]
        return find_processes(sessions=sessions, marker=(CLUSTER_VAR, self.cluster_id))

    def leftover_kernel_state(self) -> list[str]:
        """Cgroups, mounts and pod-network state (namespaces, the client host's link, nft
        tables, delay programs) of this cluster still present (empty after :meth:`stop`)."""
        left = [str(d) for d in self.cgroups.leftovers()] if self.cgroups else []
        left += [str(p) for p in cluster_mounts(self.cluster_id)]
        if self.topology.network == "pod" and available()[0]:
            left += leftover(self.cluster_id)
        return left

    def prepare_repetition(self) -> dict[str, int]:
        """Before a repetition: clear every replica's restart back-off (the next exit of a
        replica that crash-looped earlier restarts at once, as after a fresh deploy; one
        waiting out a back-off delay restarts now), remove a Redis snapshot an earlier
        repetition saved, and return ``{replica: restarts so far}``."""
        if self.data_dir is not None:
            (self.data_dir / "redis" / REDIS_RDB).unlink(missing_ok=True)
        return {name: replica.reset_backoff() for name, replica in self.replicas.items()}

    def metadata(self) -> dict[str, Any]:
        """What a result needs to say about this cluster's setup.

        ``lb``: HAProxy's version and the exact configuration it runs (text and sha256);
        ``airflow_env``: the Airflow virtualenv and its ``pip freeze --all`` (sha256 of the
        lines joined by newlines), None when it could not be listed.
        """
        return {
            "platform": self.platform,
            "cluster_id": self.cluster_id,
            "airflow_version": self.topology.airflow_version,
            "topology": self.topology.model_dump(),
            "airflow_config_overrides": dict(self.topology.airflow_config),
            "harness_version": __version__,
            "replicas": {n: r.component for n, r in self.replicas.items()},
            "ports": dict(self.ports),
            "timings": dict(self.timings),
            "cgroups": (
                self.cgroups.hierarchy.describe()
                if self.cgroups
                else {"version": None, "note": self.cgroup_note}
            ),
            "clock_skew": {
                n: {"lib": str(c.lib), "sleep_fix": c.sleep_fix_dir is not None}
                for n, c in self.clocks.items()
            },
            "postgres_disk_mb": self.postgres_disk.size_mb if self.postgres_disk else None,
            "network": {
                "mode": "pod" if self.network is not None else "loopback",
                "requested": self.topology.network,
                "note": self.network_note or None,
                "subnet": str(self.network.subnet) if self.network is not None else None,
                "hosts": {n: h.address for n, h in self.hosts.items()},
            },
            "lb": {
                "kind": "haproxy",
                "version": self.lb_version,
                "config_sha256": (
                    hashlib.sha256(self.lb_config.encode()).hexdigest() if self.lb_config else None
                ),
                "config": self.lb_config,
            },
            "airflow_env": self._airflow_env_metadata(),
        }

    def _airflow_env_metadata(self) -> dict[str, Any]:
        if self.airflow is None:
            return {"path": None, "packages": None, "packages_sha256": None}
        try:
            packages: list[str] | None = self.airflow.packages()
        except HarnessError as exc:
            self._say(f"could not list the Airflow environment's packages: {exc}")
            packages = None
        return {
            "path": str(self.airflow.prefix),
            "packages": packages,
            "packages_sha256": (
                None
                if packages is None
                else hashlib.sha256("\n".join(packages).encode()).hexdigest()
            ),
        }

    # -- internals ---------------------------------------------------------------------
    def _setup_cgroups(self, hierarchy: Hierarchy | None = None) -> None:
        """One cgroup per replica where the host has a usable hierarchy; else one line
        saying why, and membership stays with the /proc scan."""
        assert self.data_dir is not None
        if hierarchy is None:
            hierarchy, self.cgroup_note = detect()
        self._say(self.cgroup_note)
        if hierarchy is None:
            return
        try:
            self.cgroups = ClusterCgroups(hierarchy, self.cluster_id).create(
                self.data_dir / REGISTRY_FILE
            )
        except OSError as exc:
            self.cgroup_note = f"cgroups: cannot create {self.cluster_id}: {exc}; /proc scan"
            self._say(self.cgroup_note)
            self.cgroups = None

    def _setup_clocks(self) -> None:
        """A timestamp file per replica that may be skewed (its offset ``+0`` until a fault)."""
        assert self.data_dir is not None and self.airflow is not None
        if not self.topology.clock_skew_replicas:
            return
        lib = find_libfaketime()
        fix = sleep_is_broken(str(lib), str(self.airflow.python))
        if fix:
            self._say(f"{lib}: time.sleep fails with DONT_FAKE_MONOTONIC "
                      "(libfaketime#426): skewed replicas sleep through select()")  # fmt: skip
        for name in self.topology.clock_skew_replicas:
            self.clocks[name] = SkewableClock(
                self.data_dir / "faketime" / name, lib,
                sleep_fix_dir=self.data_dir / "faketime" / "site" if fix else None,
            )  # fmt: skip

    def _setup_network(self) -> None:
        """``network: pod``: the cluster's pod network, the root namespace as its client
        host, and the services' hosts (so the Airflow replicas' configuration can name
        HAProxy's address before it runs); the rest get theirs in :meth:`_spec`. Without the
        means (root, ip, nft) one line says why and the cluster stays on loopback."""
        if self.topology.network != "pod":
            return
        ok, why = available()
        if not ok:
            self.network_note = (f"network: pod needs root, ip and nft ({why}): running on "
                                 "loopback, network faults refused")  # fmt: skip
            self._say(self.network_note)
            return
        self.network = PodNetwork(self.cluster_id)
        self.network.add_node_host(CLIENT_HOST)
        for name in SERVICES:
            self.network.add_host(name)
        self._register_hosts()
        self._say(f"pod network {self.network.subnet}: client {self.address(CLIENT_HOST)}")

    def _host(self, name: str) -> Host | None:
        """The pod-network host of replica ``name`` (made on first use), None on loopback."""
        if self.network is None:
            return None
        host = self.network.hosts.get(name) or self.network.add_host(name)
        self._register_hosts()
        return host

    def _register_hosts(self) -> None:
        assert self.network is not None
        register_hosts(self.cluster_id, [h.address for h in self.network.hosts.values()])

    def _remove_kernel_state(self) -> None:
        """Remove the cluster's cgroups, unmount its filesystems and remove its pod network
        (after the replicas are gone); problems are said."""
        problems = []
        if self.network is not None:
            problems += self.network.close()
            unregister_hosts(self.cluster_id)
        if self.cgroups is not None:
            try:
                self.cgroups.remove()
            except (HarnessError, OSError) as exc:
                problems.append(str(exc))
        problems += unmount_cluster(self.cluster_id)
        for problem in problems:
            self._say(f"clean-up: {problem}")

    def _start_watchdog(self) -> None:
        assert self.data_dir is not None
        env = {k: v for k, v in os.environ.items() if k != CLUSTER_VAR}
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", "harness.platform.local.watchdog", self.cluster_id,
             str(self.data_dir)],
            stdin=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )  # fmt: skip

    def _allocate_ports(self) -> None:
        names = ["postgres", "redis", "lb", "lb_stats"]
        t = self.topology
        names += [f"api-server-{i}" for i in range(t.api_servers)]
        names += [f"scheduler-{i}" for i in range(t.schedulers)]
        names += [f"triggerer-{i}" for i in range(t.triggerers)]
        names += [f"worker-{i}" for i in range(t.workers)]
        used: set[int] = set()
        if t.lb_port is not None:
            if not port_is_free(t.lb_port):
                raise HarnessError(
                    f"port {t.lb_port} (lb_port) is in use on 127.0.0.1",
                    fix="stop what listens there, choose another port, or leave lb_port unset "
                    "to pick a free one",
                )
            used.add(t.lb_port)
            self.ports["lb"] = t.lb_port
        for name in names:
            if name in self.ports:
                continue
            port = free_port(exclude=used)
            used.add(port)
            self.ports[name] = port

    def _add(self, spec: ReplicaSpec, *, start: bool) -> Replica:
        replica = Replica(spec, self.bus)
        self.replicas[spec.name] = replica
        if start:
            replica.start()
        return replica

    def _spec(self, name: str, component: str, command: list[str], **kw: Any) -> ReplicaSpec:
        assert self.logs_dir is not None
        kw.setdefault("restart", self.topology.restart)
        kw.setdefault("grace_s", self.topology.termination_grace_s)
        kw.setdefault("readiness_probe", self.topology.readiness)
        env = {**kw.pop("env", dict(os.environ)), CLUSTER_VAR: self.cluster_id,
               "HA_BENCH_REPLICA": name}  # fmt: skip
        if name in self.topology.replica_airflow_config:  # one replica configured apart
            env.update(self.topology.airflow_env(name))
        clock = self.clocks.get(name)
        if clock is not None:
            env = clock.env(env)
        return ReplicaSpec(
            host=self._host(name),
            cgroup=self.cgroups.replica(name) if self.cgroups else None,
            clock=clock,
            registry=self.data_dir / SESSIONS_FILE if self.data_dir else None,
            name=name,
            component=component,
            command=command,
            env=env,
            log_path=self.logs_dir / f"{name}.log",
            cluster_id=self.cluster_id,
            **kw,
        )

    def _start_postgres(self, postgres: str, initdb: str) -> None:
        assert self.data_dir is not None and self.logs_dir is not None
        user = "postgres" if os.geteuid() == 0 else None
        pgdata = self.data_dir / "pgdata"
        sockets = self.data_dir / "pgsock"
        disk_mb = self.topology.postgres_disk_mb
        if disk_mb:  # the data directory (WAL included) on a disk that can fill up
            self.postgres_disk = SizedDisk(
                self.data_dir / "pgdisk", f"{self.cluster_id}-postgres", disk_mb
            ).mount()
            pgdata = self.postgres_disk.mountpoint / "pgdata"
        for d in (pgdata, sockets):
            d.mkdir(mode=0o700)
            if user:
                shutil.chown(d, user, user)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env[CLUSTER_VAR] = self.cluster_id
        result = subprocess.run(  # initdb runs to completion; its session is never left behind
            [initdb, "-D", str(pgdata), "-U", "airflow", "--auth=trust", "-E", "UTF8",
             "--no-sync"],
            user=user, env=env, capture_output=True, text=True, cwd="/",
        )  # fmt: skip
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["?"])[-1]
            raise HarnessError(
                f"initdb failed: {last}",
                fix="check the PostgreSQL install (`apt-get install postgresql`)",
            )
        port, address = self.ports["postgres"], self.address("postgres")
        if self.network is not None:  # the harness (client) and the replicas: every host
            with open(pgdata / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {self.network.subnet} trust\n")
        command = [
            postgres, "-D", str(pgdata), "-p", str(port), "-k", str(sockets),
            "-c", f"listen_addresses={address}", "-c", "max_connections=400",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "shared_buffers=128MB",
        ]  # fmt: skip
        if disk_mb:  # WAL recycled well within the disk, so only the fault fills it
            wal = max(32, disk_mb // 4)
            command += ["-c", f"max_wal_size={wal}MB", "-c", "min_wal_size=32MB"]
        dsn = self._dsn("postgres")
        spec = self._spec(
            "postgres", "postgres", command, env=env, user=user, cwd=Path("/"),
            ports=(port,), readiness=checks.postgres_check(dsn),
            stop_signal=signal.SIGINT,  # PostgreSQL "fast" shutdown
            disk=self.postgres_disk,
        )  # fmt: skip
        self._add(spec, start=True)

    def _redis_spec(self, redis: str) -> ReplicaSpec:
        assert self.data_dir is not None
        port = self.ports["redis"]
        (self.data_dir / "redis").mkdir()
        # no periodic saves and no AOF: a restart comes back empty, unless the snapshot
        # fault saved dump.rdb (then it comes back as it was then; prepare_repetition
        # removes the file, so one repetition's snapshot never reaches the next)
        command = [redis, "--port", str(port), "--bind", self.address("redis"), "--save", "",
                   "--appendonly", "no", "--dir", str(self.data_dir / "redis"),
                   "--dbfilename", REDIS_RDB, "--protected-mode", "no"]  # fmt: skip
        return self._spec("redis", "redis", command, ports=(port,),
                          readiness=checks.redis_check(port, self.address("redis")))  # fmt: skip

    def _haproxy_spec(self, haproxy: str) -> ReplicaSpec:
        assert self.data_dir is not None
        config = self.data_dir / "haproxy.cfg"
        servers = {n: (self.address(n), self.ports[n]) for n in self.api_server_urls}
        self.lb_config = haproxy_config(self.ports["lb"], self.ports["lb_stats"], servers,
                                        bind=self.address("haproxy"))  # fmt: skip
        config.write_text(self.lb_config)
        self.lb_version = haproxy_version(haproxy)
        return self._spec(
            "haproxy", "haproxy", [haproxy, "-db", "-f", str(config)],
            ports=(self.ports["lb"], self.ports["lb_stats"]),
            readiness=checks.http_check(self.ports["lb_stats"], "/stats",
                                        host=self.address("haproxy")),
        )  # fmt: skip

    def airflow_env(self) -> dict[str, str]:
        """The environment shared by every Airflow component (secrets included)."""
        assert self.airflow is not None and self.data_dir is not None
        if not hasattr(self, "_airflow_env"):
            home = self.data_dir / "airflow"
            pg, lb = f"{self.address('postgres')}:{self.ports['postgres']}", self.lb_url
            redis = f"{self.address('redis')}:{self.ports['redis']}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
            env.update(
                {
                    "PATH": f"{self.airflow.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "VIRTUAL_ENV": str(self.airflow.prefix),
                    "AIRFLOW_HOME": str(home),
                    "PYTHONUNBUFFERED": "1",
                    "HA_BENCH_LEDGER": str(self.ledger_path),
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__CORE__DAGS_FOLDER": str(self.data_dir / "dags"),
                    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                    "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(
                        secrets.token_bytes(32)
                    ).decode(),
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{lb}/execution/",
                    "AIRFLOW__API__BASE_URL": self.ui_url,  # the browser's URL
                    "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                    "AIRFLOW__API__WORKERS": str(self.topology.api_server_workers),
                    "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                        f"postgresql+psycopg2://airflow@{pg}/airflow"
                    ),
                    "AIRFLOW__CELERY__BROKER_URL": f"redis://{redis}/0",
                    "AIRFLOW__CELERY__RESULT_BACKEND": (f"db+postgresql://airflow@{pg}/airflow"),
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.topology.worker_concurrency),
                    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
                    CLUSTER_VAR: self.cluster_id,
                }
            )
            env.update(self.topology.airflow_env())
            self._airflow_env = env
        return dict(self._airflow_env)

    def _prepare_airflow(self) -> None:
        assert self.data_dir is not None and self.airflow is not None and self.logs_dir
        import psycopg

        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE airflow")
        dags = self.data_dir / "dags"
        dags.mkdir()
        for source in sorted(self._dags_dir.glob("*.py")) if self._dags_dir else ():
            shutil.copy(source, dags / source.name)
        log = self.logs_dir / "db-migrate.log"
        with open(log, "ab") as out:
            result = subprocess.run(
                [str(self.airflow.airflow), "db", "migrate"],
                env=self.airflow_env(), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, timeout=300,
            )  # fmt: skip
        if result.returncode != 0:
            raise BringUpError(
                f"`airflow db migrate` failed (exit {result.returncode}): "
                + tail(log, 3).replace("\n", " | "),
                fix=f"read {log}",
            )

    def _airflow_specs(self) -> list[ReplicaSpec]:
        assert self.airflow is not None
        t, airflow, dsn = self.topology, str(self.airflow.airflow), self.dsn
        base = self.airflow_env()
        specs = []
        liveness = t.liveness
        for i in range(t.api_servers):
            name, port = f"api-server-{i}", self.ports[f"api-server-{i}"]
            address = self._address_of(name)
            health = checks.all_of(
                checks.http_check(port, "/execution/health", host=address),
                checks.http_check(port, "/api/v2/monitor/health", host=address),
            )
            specs.append(self._spec(
                name, "api-server",
                [airflow, "api-server", "--host", address, "--port", str(port),
                 "--workers", str(t.api_server_workers)],
                env=base, ports=(port,), readiness=health, liveness=health,
                liveness_probe=liveness,
            ))  # fmt: skip
        for i in range(t.schedulers):
            name, port = f"scheduler-{i}", self.ports[f"scheduler-{i}"]
            address = self._address_of(name)
            health = checks.http_check(port, "/health", host=address)
            env = {
                **base,
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(port),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": address,
            }
            specs.append(self._spec(
                name, "scheduler", [airflow, "scheduler"], env=env, ports=(port,),
                readiness=health, liveness=health, liveness_probe=liveness,
            ))  # fmt: skip
        for i in range(t.dag_processors):
            health = checks.job_check(dsn, "DagProcessorJob")
            specs.append(self._spec(
                f"dag-processor-{i}", "dag-processor", [airflow, "dag-processor"], env=base,
                readiness=health,
            ))  # fmt: skip
        for i in range(t.triggerers):
            name, port = f"triggerer-{i}", self.ports[f"triggerer-{i}"]
            env = {**base, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port)}
            specs.append(self._spec(
                name, "triggerer", [airflow, "triggerer"], env=env, ports=(port,),
                readiness=checks.job_check(dsn, "TriggererJob"),
            ))  # fmt: skip
        for i in range(t.workers):
            name, port = f"worker-{i}", self.ports[f"worker-{i}"]
            env = {**base, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port)}
            ready = checks.log_line_check(
                r"@\S+ ready\.", then=checks.tcp_check(port, self._address_of(name))
            )
            specs.append(self._spec(
                name, "worker",
                [airflow, "celery", "worker", "--celery-hostname", f"{name}@%h",
                 "--concurrency", str(t.worker_concurrency)],
                env=env, ports=(port,), readiness=ready,
                grace_s=max(t.termination_grace_s, 30.0),  # warm shutdown finishes tasks
                stop_scope="leader",  # DUMB_INIT_SETSID=0, as Airflow prescribes for workers
            ))  # fmt: skip
        return specs

    def _address_of(self, name: str) -> str:
        """Replica ``name``'s address, its host made now if it has none yet (pod mode)."""
        self._host(name)
        return self.address(name)

    def _wait_ready(
        self,
        names: list[str],
        progress: Callable[[dict[str, bool]], None] | None,
        *,
        timeout_s: float,
    ) -> None:
        state: dict[str, bool] = {}

        def all_ready() -> bool:
            nonlocal state
            state = {n: self.replicas[n].ready for n in names}
            if progress:
                progress(state)
            if all(state.values()):
                return True
            for name in names:
                replica = self.replicas[name]
                if replica.restarts >= 3 and not replica.ready:
                    self._fail_bring_up(replica, "keeps exiting")
            return False

        if not poll(all_ready, timeout_s=timeout_s, interval_s=0.2):
            slow = next(self.replicas[n] for n, ok in state.items() if not ok)
            self._fail_bring_up(slow, f"not ready after {timeout_s:.0f}s")

    def _fail_bring_up(self, replica: Replica, why: str) -> None:
        lines = replica.log_tail(8).replace("\n", " | ")
        raise BringUpError(
            f"{replica.name} {why} (last exit code {replica.last_exit_code}); log tail: {lines}",
            fix=f"read {replica.spec.log_path}",
        )

    def _watch_lb(self) -> None:
        """Emit ``in_lb``/``out_of_lb`` when HAProxy's health checks move an api-server."""
        known: dict[str, bool] = {}
        port, host = self.ports["lb_stats"], self.address("haproxy")
        while not self._lb_watch_stop.wait(0.1):
            try:
                states = lb_server_states(port, host=host)
            except (OSError, http.client.HTTPException, ValueError):
                continue
            for name, up in states.items():
                if known.get(name) != up:
                    known[name] = up
                    replica = self.replicas.get(name)
                    self.bus.emit(
                        "lifecycle", replica=name, component="api-server",
                        state="in_lb" if up else "out_of_lb",
                        incarnation=replica.incarnation if replica else None,
                    )  # fmt: skip


def haproxy_version(haproxy: str) -> str | None:
    """``2.6.12-1+deb12u4`` from ``haproxy -v``; None if it does not say."""
    try:
        out = subprocess.run([haproxy, "-v"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"version (\S+)", out)
    return match.group(1) if match else None


def haproxy_config(lb_port: int, stats_port: int, servers: dict[str, int | tuple[str, int]],
                   bind: str = "127.0.0.1") -> str:  # fmt: skip
    """HAProxy in front of the api-servers, health-checked every 500 ms; it listens on
    ``bind``, and ``servers`` maps a name to a port on 127.0.0.1 or to (address, port).

    A request that could not be sent (connection refused or timed out) is retried on
    another server for every method (``option redispatch``). Layer-7 retries — a replay of
    a request the server may already have acted on (empty response, response timeout, 502,
    503) — are only for GET and HEAD: a replayed DAG-run trigger (POST) whose first attempt
    created the run gets 409, and other POST/PATCH/DELETE requests would act twice.
    """
    lines = [
        "global",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 60s",
        "    timeout server 30s",
        "    timeout check 1s",
        "    retries 3",
        "    option redispatch",
        "    retry-on conn-failure empty-response response-timeout 502 503",
        "frontend api",
        f"    bind {bind}:{lb_port}",
        "    default_backend api_servers",
        "backend api_servers",
        "    balance roundrobin",
        # the whole request is read before a server is chosen, so a request with a body can
        # still be sent to another server when the connection to the first one fails
        "    option http-buffer-request",
        # disable-l7-retry keeps the retries after a connection failure (nothing was sent)
        "    http-request disable-l7-retry if !METH_GET !METH_HEAD",
        # /execution/health, not /api/v2/version: the check itself pays for the lazy
        # start-up of the Execution API, so no client request is routed to a replica
        # that would stall for seconds on its first task call
        "    option httpchk GET /execution/health",
        "    http-check expect status 200",
        "    default-server inter 500ms fall 2 rise 2",
        *(f"    server {name} {_endpoint(to)} check" for name, to in servers.items()),
        "listen stats",
        f"    bind {bind}:{stats_port}",
        "    stats enable",
        "    stats uri /stats",
        "",
    ]
    return "\n".join(lines)


def _endpoint(to: int | tuple[str, int]) -> str:
    return f"127.0.0.1:{to}" if isinstance(to, int) else f"{to[0]}:{to[1]}"


def lb_server_states(stats_port: int, timeout_s: float = 1.0,
                     host: str = "127.0.0.1") -> dict[str, bool]:  # fmt: skip
    """{server name: in rotation?} from HAProxy's CSV stats."""
    conn = http.client.HTTPConnection(host, stats_port, timeout=timeout_s)
    try:
        conn.request("GET", "/stats;csv")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    reader = csv.DictReader(io.StringIO(body.lstrip("# ")))
    return {
        row["svname"]: row["status"].startswith("UP")
        for row in reader
        if row.get("pxname") == "api_servers" and row["svname"] not in ("FRONTEND", "BACKEND")
    }
