"""Benchmark: does the open-loop prober keep its schedule while Locust loads a real api-server?

    .venv/bin/python benchmarks/bench_probe_under_load.py [--users 50] [--seconds 30]

Starts a one-api-server cluster, runs the prober (50 ms, LB + replica) and Locust (50
users) for the given time, and prints the achieved probe rate as a share of the planned
rate, plus the CPU share of the harness's own processes (harness, prober, Locust) of the
whole machine over the same window. Repeat it; report the spread.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

from harness.core.history import read_history
from harness.core.provenance import machine
from harness.core.topology import Topology
from harness.observe.load.process import LoadProcess
from harness.observe.probe.prober import ProbeTarget
from harness.observe.probe.process import ProberProcess
from harness.observe.workload import DAGS_DIR
from harness.platform.local.cluster import LocalCluster


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    topology = Topology(api_servers=1, schedulers=1, dag_processors=1, triggerers=0, workers=1)
    with LocalCluster(topology, dags_dir=DAGS_DIR) as cluster, tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            run_dir = Path(tmp) / f"rep-{rep}"
            targets = [
                ProbeTarget("lb", cluster.lb_url),
                ProbeTarget("api-server-0", cluster.api_server_urls["api-server-0"]),
            ]
            prober = ProberProcess(targets, run_dir, duration_s=args.seconds)
            load = LoadProcess(run_dir, cluster.lb_url, users=args.users, spawn_rate=args.users)
            load.start()
            time.sleep(3)  # let the users spawn
            prober.start()
            pids = [psutil.Process().pid, prober.pid, load.pid]
            cpu0, wall0 = _cpu_seconds(pids), time.monotonic()
            machine0 = sum(psutil.cpu_times()[:3])
            prober.wait(args.seconds + 30)
            cpu1, wall1 = _cpu_seconds(pids), time.monotonic()
            machine1 = sum(psutil.cpu_times()[:3])
            load.stop()
            df = read_history(run_dir)
            end = df[(df["type"] == "marker") & (df["name"] == "prober_end")]
            stats = end["detail"].iloc[0]
            requests = int((df["type"] == "request").sum())
            share = (cpu1 - cpu0) / max(machine1 - machine0, 1e-9)
            print(json.dumps({
                "repetition": rep + 1,
                "planned": stats["planned"],
                "sent": stats["sent"],
                "achieved_fraction": round(stats["sent"] / stats["planned"], 4),
                "probe_lag_p99_s": stats.get("lag_p99_s"),
                "locust_requests": requests,
                "locust_rps": round(requests / (wall1 - wall0), 1),
                "harness_cpu_share_of_machine": round(share, 3),
                "machine_busy_cores": round((machine1 - machine0) / (wall1 - wall0), 2),
            }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
