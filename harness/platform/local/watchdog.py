"""Last-resort clean-up when the harness itself dies without unwinding (e.g. SIGKILL).

Started by the local cluster as ``python -m harness.platform.local.watchdog CLUSTER_ID DIR``
with a pipe on its stdin. When the pipe closes — the harness exited, however it exited —
it removes the cluster's cgroups (thawed, every member killed; listed in ``DIR/cgroups``),
kills every process still carrying the cluster's environment marker or in a session the
cluster started, unmounts the filesystems the cluster mounted (their source names the
cluster), removes its pod network (namespaces ``<cluster id>-*``, their processes and
delay programs: :func:`.net.remove_cluster_network`) and removes ``DIR`` — all no-ops
after a clean stop.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from pathlib import Path

from harness.platform.local.cgroups import REGISTRY_FILE, remove_tree
from harness.platform.local.disk import unmount_cluster
from harness.platform.local.net import remove_cluster_network
from harness.platform.local.process import CLUSTER_VAR, find_processes, signal_pids

SESSIONS_FILE = "sessions"


def cluster_processes(cluster_id: str, directory: Path) -> list[int]:
    """Processes with the cluster marker or in a session the cluster started."""
    try:
        sessions = [int(x) for x in (directory / SESSIONS_FILE).read_text().split()]
    except (OSError, ValueError):
        sessions = []
    return find_processes(sessions=sessions, marker=(CLUSTER_VAR, cluster_id))


def reap_cluster(cluster_id: str, directory: Path, timeout_s: float = 10.0) -> int:
    """SIGKILL every process of the cluster until none is left; returns how many were found."""
    found = cluster_processes(cluster_id, directory)
    deadline = time.monotonic() + timeout_s
    pids = found
    while pids and time.monotonic() < deadline:
        signal_pids(pids, signal.SIGKILL)
        signal_pids(pids, signal.SIGCONT)
        time.sleep(0.1)
        pids = cluster_processes(cluster_id, directory)
    return len(found)


def main(argv: list[str]) -> int:
    cluster_id, directory = argv[0], Path(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the harness's to handle
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    time.sleep(0.5)  # let a harness that is unwinding finish its own clean-up first
    return clean_up(cluster_id, directory)


def clean_up(cluster_id: str, directory: Path) -> int:
    """Everything of the cluster removed: cgroups (first: a frozen process dies only once
    thawed), processes, mounts, the pod network, the directory; returns 1 if something was
    left."""
    problems = remove_tree(directory / REGISTRY_FILE, cluster_id)
    reap_cluster(cluster_id, directory)
    problems += unmount_cluster(cluster_id)
    problems += remove_cluster_network(cluster_id)
    shutil.rmtree(directory, ignore_errors=True)
    for problem in problems:
        print(f"ha-bench watchdog {cluster_id}: {problem}", file=sys.stderr, flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
