"""Benchmark: bring-up time of the default topology, cold (first install) and warm.

    .venv/bin/python benchmarks/bench_bringup.py [--warm N] [--cold]

Warm: Airflow already cached; N bring-ups, median and spread. Cold: a fresh, temporary
cache, so the Airflow install is part of the time (needs network access to PyPI).
Measurements, not a test: run it on a quiet machine and report the machine with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from harness.core.provenance import machine
from harness.core.topology import Topology
from harness.observe.workload import DAGS_DIR
from harness.platform.local.cluster import LocalCluster


def bring_up_once() -> dict[str, float]:
    t0 = time.monotonic()
    with LocalCluster(Topology(), dags_dir=DAGS_DIR) as cluster:
        timings = dict(cluster.timings)
    timings["total_with_teardown_s"] = time.monotonic() - t0
    return timings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=3, help="warm bring-ups (default 3)")
    parser.add_argument("--cold", action="store_true", help="also one cold bring-up")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="ha-bench-cold-cache-") as cache:
            os.environ["HA_BENCH_CACHE"] = cache
            cold = bring_up_once()
            del os.environ["HA_BENCH_CACHE"]
        print(f"cold: install {cold['airflow_env_s']:.1f}s, ready {cold['ready_s']:.1f}s "
              f"after start (install included)")  # fmt: skip
    warm = [bring_up_once() for _ in range(args.warm)]
    ready = [w["ready_s"] for w in warm]
    listed = ", ".join(f"{r:.1f}" for r in ready)
    median = statistics.median(ready)
    print(f"warm: ready in {listed} s; median {median:.1f}s, "
          f"min {min(ready):.1f}s, max {max(ready):.1f}s")  # fmt: skip
    for w in warm:
        print(f"  services {w['services_s']:.1f}s, db migrate done {w['db_migrate_s']:.1f}s, "
              f"all ready {w['ready_s']:.1f}s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
