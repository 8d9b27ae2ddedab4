"""``ha-bench list``, ``validate``, ``schema``, ``run`` and ``soak``: the experiments, and
running them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.common import Subparsers, positive, shared
from harness.core.errors import HarnessError


def add_list(sub: Subparsers) -> None:
    sub.add_parser("list", help="list experiments and their parameters")


def add_validate(sub: Subparsers) -> None:
    validate = sub.add_parser("validate", help="check experiment files; exit 2 on any problem")
    validate.add_argument("files", nargs="+", type=Path, metavar="PATH.yaml")


def add_schema(sub: Subparsers) -> None:
    sub.add_parser("schema", help="print the JSON Schema of experiment files")


def add_run(sub: Subparsers) -> argparse.ArgumentParser:
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
    return run


def add_soak(sub: Subparsers, run: argparse.ArgumentParser) -> None:
    """``soak``; its ``--seed``, ``--topology``, ... are ``run``'s."""
    soak = sub.add_parser("soak", help="a long run with a seeded random mix of faults, checked")
    soak.add_argument("--minutes", type=positive, required=True, help="minutes of faults")
    soak.add_argument(
        "--faults",
        default="kill,terminate,pause",
        metavar="OPS",
        help="comma-separated: kill, terminate, pause, freeze, cpu_throttle, stop_service",
    )
    soak.add_argument(
        "--mean-gap",
        type=positive,
        default=45.0,
        metavar="SECONDS",
        help="mean seconds between faults (default 45)",
    )
    for flag in ("--seed", "--topology", "--airflow-version", "--platform", "--kube-context"):
        soak.add_argument(flag, **shared(run, flag))
    soak.add_argument("--out", type=Path, required=True, metavar="DIR")


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
    metrics = dict.fromkeys((*headline, "failed_tasks"))  # in order, each once
    shown = ", ".join(f"{m} {_figure_text(r, m)}" for m in metrics)
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
    return cmd_run(_run_parser().parse_args(argv))


def _run_parser() -> argparse.ArgumentParser:
    """``ha-bench`` with only its ``run`` command: what :func:`cmd_soak` parses its ``run``
    arguments with (the same namespace as the full parser's)."""
    parser = argparse.ArgumentParser(prog="ha-bench")
    add_run(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser
