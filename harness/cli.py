"""``ha-bench``: the command line. Every subcommand and flag here is a documented contract."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness import __version__
from harness.core.errors import HarnessError


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ha-bench", description="Chaos and failover benchmarks for Apache Airflow HA."
    )
    parser.add_argument("--version", action="version", version=f"ha-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start a local HA cluster and keep it up until Ctrl-C")
    up.add_argument("--topology", type=Path, help="topology YAML file (default: reference HA)")
    up.add_argument("--airflow-version", help="override the topology's Airflow version")
    up.add_argument("--port", type=int, help="HAProxy's port (the UI/API URL; default: a free one)")
    up.add_argument("--logs", type=Path, help="keep replica logs in this directory")
    up.add_argument("--duration", type=_positive, help="stop after SECONDS instead of Ctrl-C")
    up.add_argument("--json", action="store_true", help="print one JSON line when ready")

    probe = sub.add_parser("probe", help="probe an HTTP URL open-loop and summarise outages")
    probe.add_argument("--url", required=True)
    probe.add_argument("--duration", type=_positive, required=True, metavar="SECONDS")
    probe.add_argument("--interval", type=_positive, default=0.05, metavar="SECONDS")
    probe.add_argument("--timeout", type=_positive, default=1.0, metavar="SECONDS")
    probe.add_argument("--out", type=Path, required=True, metavar="DIR")
    probe.add_argument("--allow-remote", action="store_true",
                       help="allow a non-loopback URL (only a server you own)")  # fmt: skip
    sub.add_parser("list", help="list experiments and their parameters")
    validate = sub.add_parser("validate", help="check experiment files; exit 2 on any problem")
    validate.add_argument("files", nargs="+", type=Path, metavar="PATH.yaml")
    sub.add_parser("schema", help="print the JSON Schema of experiment files")

    run = sub.add_parser("run", help="run one experiment on a fresh cluster")
    run.add_argument(
        "experiment",
        metavar="EXPERIMENT",
        help="a catalogue name (`ha-bench list`) or an experiment file (.yaml)",
    )
    run.add_argument("--topology", type=Path, metavar="FILE",
                     help="topology YAML the experiment's overrides apply to "
                     "(restart policy, probes, grace, Airflow config ...)")  # fmt: skip
    run.add_argument("--api-servers", type=int, help="api-server replicas")
    run.add_argument("--schedulers", type=int, help="scheduler replicas")
    run.add_argument("--workers", type=int, help="Celery worker replicas")
    run.add_argument("--repeat", type=int, default=1, help="repetitions (default 1)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="experiment parameter (see `ha-bench list`), or an Airflow config override "
        "as section.key=value; repeatable",
    )
    run.add_argument("--seed", type=int, default=0, help="seed for the fault timing")
    run.add_argument(
        "--max-reruns",
        type=int,
        default=None,
        metavar="N",
        help="rerun invalid repetitions at most N times (default: --repeat)",
    )
    run.add_argument(
        "--fresh-cluster",
        action="store_true",
        help="a new cluster for every repetition (default: one per topology)",
    )
    run.add_argument("--airflow-version", help="Airflow version under test")
    run.add_argument("--out", type=Path, required=True, metavar="DIR")
    run.add_argument("--platform", choices=("local", "kubernetes"), default="local")
    run.add_argument("--kube-context", help="kubernetes: context (default: the current one)")
    run.add_argument("--allow-context", action="append", default=[], metavar="GLOB",
                     help="kubernetes: also allow this context besides kind-*")  # fmt: skip

    soak = sub.add_parser("soak", help="a long run with a seeded random mix of faults, checked")
    soak.add_argument("--minutes", type=_positive, required=True, help="minutes of faults")
    soak.add_argument(
        "--faults",
        default="kill,terminate,pause",
        metavar="OPS",
        help="comma-separated: kill, terminate, pause, stop_service",
    )
    soak.add_argument(
        "--mean-gap",
        type=_positive,
        default=45.0,
        metavar="SECONDS",
        help="mean seconds between faults (default 45)",
    )
    for flag in ("--seed", "--topology", "--airflow-version", "--platform", "--kube-context"):
        soak.add_argument(flag, **_shared(run, flag))
    soak.add_argument("--out", type=Path, required=True, metavar="DIR")

    kind = sub.add_parser("kind", help="create or delete the reference kind cluster")
    kind.add_argument("action", choices=("up", "down", "gc"),
                      help="gc: delete the stale namespaces of killed or failed runs")  # fmt: skip
    kind.add_argument("--name", default="ha-bench", help="kind cluster name (context kind-NAME)")

    report = sub.add_parser(
        "report", help="write report.md, a self-contained report.html and figures/ for a run"
    )
    report.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN_DIR",
        help="a run directory (results/<run-id>) or one experiment's directory",
    )

    compare = sub.add_parser(
        "compare", help="compare two runs per variant; exit 1 on a significant regression"
    )
    compare.add_argument("base", type=Path, metavar="BASE_RUN")
    compare.add_argument("new", type=Path, metavar="NEW_RUN")
    compare.add_argument(
        "--force",
        action="store_true",
        help="compare even if the setups differ (Airflow, topology, config)",
    )
    compare.add_argument(
        "--alpha", type=_positive, default=0.05, help="significance level (default 0.05)"
    )

    runs = sub.add_parser("runs", help="list recorded runs with their headline figures")
    runs.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="results directory (default ./results)",
    )

    check = sub.add_parser(
        "check",
        help="re-run the task-history checkers on recorded repetitions; exit 1 if any is "
        "invalid, 3 if evidence is missing or a checker cannot decide",
    )
    check.add_argument("path", type=Path, metavar="DIR",
                       help="a run, experiment or rep-N directory")  # fmt: skip
    check.add_argument("--stuck-after", type=_positive, default=120.0, metavar="SECONDS",
                       help="queued/running longer than this is stuck (default 120)")  # fmt: skip
    return parser


def cmd_list(args: argparse.Namespace) -> int:
    from harness.run.catalogue import catalogue

    for name, spec in catalogue().items():
        print(f"{name}: {spec.summary}")
        for key, p in spec.params.items():
            choices = f"  one of {list(p.choices)}" if p.choices else ""
            print(f"    {key}={p.default!r}  {p.help}{choices}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.run.catalogue import validate_file

    failed = 0
    for path in args.files:
        problems = validate_file(path)
        failed += bool(problems)
        for problem in problems:
            print(f"ha-bench: {path}: {problem}", file=sys.stderr)
        if not problems:
            print(f"{path}: valid")
    return 2 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from harness.run.catalogue import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.core.cleanup import unwind_on_termination
    from harness.core.topology import load_topology
    from harness.report.report import write_run_report
    from harness.run.catalogue import build
    from harness.run.suite import ClusterPool, run_in_pool

    overrides: dict[str, object] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HarnessError(f"--set {item!r} is not KEY=VALUE", fix="e.g. --set load_users=10")
        overrides[key.strip()] = value.strip()
    base = load_topology(args.topology) if args.topology else None
    for key in ("api_servers", "schedulers", "workers"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
        elif base is not None and key in base.model_fields_set:
            overrides.setdefault(key, getattr(base, key))  # the file's count, unless --set
    if args.repeat < 1:
        raise HarnessError("--repeat must be >= 1", fix="e.g. --repeat 5")
    experiment = build(args.experiment, overrides, platform=args.platform)
    if args.out.exists() and any(args.out.iterdir()):
        raise HarnessError(f"{args.out} is not empty", fix="pass a new --out directory")
    with unwind_on_termination(), ClusterPool(
        platform=args.platform, airflow_version=args.airflow_version,
        logs_root=args.out / "logs", log=lambda m: print(m, file=sys.stderr),
        kube_context=args.kube_context, allowed_contexts=tuple(args.allow_context),
        base_topology=base,
    ) as pool:  # fmt: skip
        summary = run_in_pool(
            pool,
            experiment,
            args.out,
            repeat=args.repeat,
            seed=args.seed,
            max_reruns=args.max_reruns,
            fresh_cluster=args.fresh_cluster,
        )
    report = write_run_report(args.out)
    for r in summary["repetitions"]:
        print(_repetition_line(r, experiment.headline))
    for name, v in summary["verdicts"].items():
        print(f"{name}: {v['verdict']}" + ("" if v.get("gate", True) else " (not a gate)"))
    print(f"summary: {args.out / 'summary.json'}  report: {report}")
    return exit_code(summary)


def _figure_text(r: dict, metric: str) -> str:
    value, never = r.get(metric), (r.get("censored") or {}).get(metric)
    if never is not None:
        return f"never (>= {never:.1f} s)"
    if isinstance(value, float):
        return f"{value:.3f}" + ("s" if metric.endswith("_s") else "")
    return "-" if value is None else str(value)


def _repetition_line(r: dict, headline: tuple[str, ...]) -> str:
    head = f"repetition {r.get('repetition')}"
    if not r.get("valid", True):
        return f"{head}: INVALID ({'; '.join(r.get('invalid_reasons', []))})"
    shown = ", ".join(f"{m} {_figure_text(r, m)}" for m in (*headline, "failed_tasks"))
    return f"{head}: {shown}"


def exit_code(summary: dict) -> int:
    """0 every gate holds; 1 a gate refuted; 3 an invalid run (too few valid repetitions)."""
    from harness.check.hypothesis import failed_verdicts, invalid_run

    invalid = invalid_run(summary)
    for line in invalid:
        print(f"ha-bench: invalid run: {line}", file=sys.stderr)
    if invalid:
        return 3
    return 1 if failed_verdicts(summary) else 0


def _shared(parser: argparse.ArgumentParser, flag: str) -> dict:
    """The keyword arguments ``parser`` defined ``flag`` with (to define it again)."""
    action = next(a for a in parser._actions if flag in a.option_strings)
    return {"type": action.type, "default": action.default, "help": action.help,
            "choices": action.choices, "metavar": action.metavar}  # fmt: skip


def cmd_soak(args: argparse.Namespace) -> int:
    """``ha-bench run soak`` with the soak's parameters (one repetition, no reruns)."""
    argv = ["run", "soak", "--repeat", "1", "--max-reruns", "0", "--out", str(args.out),
            "--seed", str(args.seed), "--platform", args.platform,
            "--set", f"minutes={args.minutes}", "--set", f"faults={args.faults}",
            "--set", f"mean_gap_s={args.mean_gap}"]  # fmt: skip
    for flag, value in (("--topology", args.topology), ("--airflow-version",
                        args.airflow_version), ("--kube-context", args.kube_context)):  # fmt: skip
        if value is not None:
            argv += [flag, str(value)]
    return cmd_run(build_parser().parse_args(argv))


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
            console.print(
                f"[bold green]ready[/] in {cluster.timings['ready_s']:.1f}s — "
                f"Airflow {topology.airflow_version}, cluster {cluster.cluster_id}"
            )
            console.print(f"  UI / API (HAProxy): {cluster.lb_url}")
            for name, url in cluster.api_server_urls.items():
                console.print(f"  {name}: {url}")
            console.print(f"  HAProxy stats: {cluster.stats_url}")
            console.print(f"  logs: {cluster.logs_dir}")
            if args.json:
                info = {
                    "cluster_id": cluster.cluster_id,
                    "lb_url": cluster.lb_url,
                    "api_servers": cluster.api_server_urls,
                    "ports": cluster.ports,
                    "data_dir": str(cluster.data_dir),
                    "timings": cluster.timings,
                }
                print(json.dumps(info), flush=True)
            console.print("Ctrl-C stops everything.")
            deadline = time.monotonic() + args.duration if args.duration else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            console.print("stopping ...")
        finally:
            cluster.stop()
    return 0


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


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.report import write_run_report
    from harness.report.runs import load_run

    load_run(args.run_dir)  # a one-line error for anything that is not a run
    report = write_run_report(args.run_dir)
    print(
        f"report: {report}  html: {report.with_suffix('.html')}  "
        f"figures: {report.parent / 'figures'}"
    )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import compare_runs, render_comparison

    result = compare_runs(args.base, args.new, force=args.force, alpha=args.alpha)
    print(render_comparison(result))
    return 1 if result.regressions else 0


def cmd_runs(args: argparse.Namespace) -> int:
    from harness.report.runs import find_runs, variant_headline

    found = find_runs(args.results)
    if not found:
        print(f"no runs under {args.results}")
        return 0
    for run in found:
        started = run.started()
        when = f"{started:%Y-%m-%d %H:%M} UTC" if started else "?"
        versions = sorted({str(v.metadata.get("airflow_version")) for v in run.variants})
        totals: dict[str, int] = {}
        for v in run.variants:
            for k, n in v.verdict_counts().items():
                totals[k] = totals.get(k, 0) + n
        verdicts = ", ".join(f"{n} {k}" for k, n in sorted(totals.items())) or "none"
        print(
            f"{run.name}  {when}  {len(run.variants)} variant(s)  "
            f"Airflow {', '.join(versions)}  verdicts: {verdicts}"
        )
        width = max(len(v.name) for v in run.variants)
        for v in run.variants:
            print(f"  {variant_headline(v, width)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.check.offline import check_path, exit_code, render

    checks = check_path(args.path, stuck_after_s=args.stuck_after)
    for line in render(checks):
        print(line)
    return exit_code(checks)


COMMANDS = {
    "up": cmd_up,
    "probe": cmd_probe,
    "list": cmd_list,
    "validate": cmd_validate,
    "schema": cmd_schema,
    "run": cmd_run,
    "soak": cmd_soak,
    "kind": cmd_kind,
    "report": cmd_report,
    "compare": cmd_compare,
    "runs": cmd_runs,
    "check": cmd_check,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"ha-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head`
        sys.stderr.close()
        return 0
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"ha-bench: internal error: {type(exc).__name__}: {exc} — fix: see the "
              "traceback above; results written so far are kept", file=sys.stderr)  # fmt: skip
        return 3
    except SystemExit as exc:  # SIGTERM unwinding (harness.core.cleanup.Terminated)
        return exc.code if isinstance(exc.code, int) else 1


if __name__ == "__main__":
    sys.exit(main())
