"""``ha-bench up``, ``probe`` and ``kind``: a cluster to look at, a URL to probe, the
reference kind cluster."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from harness.cli.common import Subparsers, positive


def add_up(sub: Subparsers) -> None:
    up = sub.add_parser("up", help="start a local HA cluster and keep it up until Ctrl-C")
    up.add_argument("--topology", type=Path, help="topology YAML file (default: reference HA)")
    up.add_argument("--airflow-version", help="override the topology's Airflow version")
    up.add_argument("--port", type=int, help="HAProxy's port (the UI/API URL; default: a free one)")
    up.add_argument("--logs", type=Path, help="keep replica logs in this directory")
    up.add_argument("--duration", type=positive, help="stop after SECONDS instead of Ctrl-C")
    up.add_argument("--json", action="store_true", help="print one JSON line when ready")


def add_probe(sub: Subparsers) -> None:
    probe = sub.add_parser("probe", help="probe an HTTP URL open-loop and summarise outages")
    probe.add_argument("--url", required=True)
    probe.add_argument("--duration", type=positive, required=True, metavar="SECONDS")
    probe.add_argument("--interval", type=positive, default=0.05, metavar="SECONDS")
    probe.add_argument("--timeout", type=positive, default=1.0, metavar="SECONDS")
    probe.add_argument("--out", type=Path, required=True, metavar="DIR")
    probe.add_argument("--allow-remote", action="store_true",
                       help="allow a non-loopback URL (only a server you own)")  # fmt: skip


def add_kind(sub: Subparsers) -> None:
    kind = sub.add_parser("kind", help="create or delete the reference kind cluster")
    kind.add_argument("action", choices=("up", "down", "gc"),
                      help="gc: delete the stale namespaces of killed or failed runs")  # fmt: skip
    kind.add_argument("--name", default="ha-bench", help="kind cluster name (context kind-NAME)")


def cmd_up(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from harness.core.cleanup import unwind_on_termination
    from harness.core.topology import load_topology
    from harness.observe.workload import DAGS_DIR
    from harness.platform.local.cluster import LocalCluster

    console = Console(stderr=True)
    topology = load_topology(args.topology)
    if args.airflow_version:
        topology = topology.with_overrides(airflow_version=args.airflow_version)
    if args.port is not None:
        topology = topology.with_overrides(lb_port=args.port)
    started = time.monotonic()

    def table(state: dict[str, bool]) -> Table:
        t = Table(title=f"bringing up {topology.name} ({time.monotonic() - started:.0f}s)")
        t.add_column("replica")
        t.add_column("state")
        for name, ready in state.items():
            t.add_row(name, "[green]ready[/]" if ready else "[yellow]starting[/]")
        return t

    with unwind_on_termination():
        cluster = LocalCluster(topology, logs_dir=args.logs, log=console.print, dags_dir=DAGS_DIR)
        try:
            with Live(table({}), console=console, transient=True) as live:
                cluster.start(progress=lambda s: live.update(table(s)))
            _announce(console, cluster, topology, as_json=args.json)
            console.print("Ctrl-C stops everything.")
            deadline = time.monotonic() + args.duration if args.duration else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            console.print("stopping ...")
        finally:
            cluster.stop()
    return 0


def _announce(console: Any, cluster: Any, topology: Any, *, as_json: bool) -> None:
    """``up``: the cluster is ready: its URLs and logs on stderr, with ``--json`` one JSON
    line of them on stdout."""
    console.print(
        f"[bold green]ready[/] in {cluster.timings['ready_s']:.1f}s — "
        f"Airflow {topology.airflow_version}, cluster {cluster.cluster_id}"
    )
    pod = cluster.network is not None
    console.print(f"  UI / API (HAProxy): {cluster.ui_url}")
    if pod:  # the UI URL is a relay into the pod network; this is HAProxy itself
        console.print(f"  HAProxy in the pod network {cluster.network.subnet}: {cluster.lb_url}")
    for name, url in cluster.api_server_urls.items():
        console.print(f"  {name}: {url}")
    console.print(f"  HAProxy stats: {cluster.stats_url}")
    console.print(f"  logs: {cluster.logs_dir}")
    if as_json:
        info = {
            "cluster_id": cluster.cluster_id,
            "lb_url": cluster.ui_url,
            "network": "pod" if pod else "loopback",
            "pod_lb_url": cluster.lb_url if pod else None,
            "hosts": {n: h.address for n, h in cluster.hosts.items()},
            "api_servers": cluster.api_server_urls,
            "ports": cluster.ports,
            "data_dir": str(cluster.data_dir),
            "timings": cluster.timings,
        }
        print(json.dumps(info), flush=True)


def cmd_probe(args: argparse.Namespace) -> int:
    from harness.observe.probe.command import probe_command

    summary = probe_command(
        args.url, args.duration, args.interval, args.timeout, args.out,
        allow_remote=args.allow_remote,
    )  # fmt: skip
    print(
        f"downtime {summary['downtime_s']:.3f}s in {len(summary['outages'])} outage(s); "
        f"summary: {args.out / 'summary.json'}"
    )
    return 0


def cmd_kind(args: argparse.Namespace) -> int:
    from harness.platform.kubernetes.kind import default_ledger_dir, kind_down, kind_up

    if args.action == "gc":
        from harness.platform.kubernetes.kind import context_name
        from harness.platform.kubernetes.namespaces import gc_context

        removed = gc_context(context_name(args.name))
        print(f"kind cluster {args.name}: {len(removed)} stale namespace(s) deleted")
        return 0
    if args.action == "up":
        context = kind_up(args.name, ledger_dir=default_ledger_dir(args.name))
        print(f"kind cluster {args.name} is up: context {context}")
        print(f"run: pytest experiments/ --platform kubernetes --kube-context {context}")
    else:
        gone = kind_down(args.name)
        print(f"kind cluster {args.name} " + ("deleted" if gone else "did not exist"))
    return 0
