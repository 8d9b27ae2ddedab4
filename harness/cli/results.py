"""``ha-bench report``, ``compare``, ``runs`` and ``check``: what recorded runs show."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import Subparsers, positive


def add_report(sub: Subparsers) -> None:
    report = sub.add_parser(
        "report", help="write report.md, a self-contained report.html and figures/ for a run"
    )
    report.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN_DIR",
        help="a run directory (results/<run-id>) or one experiment's directory",
    )


def add_compare(sub: Subparsers) -> None:
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
        "--alpha", type=positive, default=0.05, help="significance level (default 0.05)"
    )


def add_runs(sub: Subparsers) -> None:
    runs = sub.add_parser("runs", help="list recorded runs with their headline figures")
    runs.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="results directory (default ./results)",
    )


def add_check(sub: Subparsers) -> None:
    check = sub.add_parser(
        "check",
        help="re-run the task-history checkers on recorded repetitions; exit 1 if any is "
        "invalid, 3 if evidence is missing or a checker cannot decide",
    )
    check.add_argument("path", type=Path, metavar="DIR",
                       help="a run, experiment or rep-N directory")  # fmt: skip
    check.add_argument("--stuck-after", type=positive, default=None, metavar="SECONDS",
                       help="queued/running longer than this is stuck (default: the "
                       "experiment's stuck_after_s, else 120)")  # fmt: skip


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
