"""``ha-bench``: the command line. Every subcommand and flag here is a documented contract.

The commands are grouped in modules, each with its parsers (``add_<command>``) and its
``cmd_<command>``: :mod:`.cluster` (``up``, ``probe``, ``kind``), :mod:`.experiments`
(``list``, ``validate``, ``schema``, ``run``, ``soak``) and :mod:`.results` (``report``,
``compare``, ``runs``, ``check``). ``python -m harness.cli`` runs :func:`main`.
"""

from __future__ import annotations

import argparse
import sys

from harness import __version__
from harness.cli import cluster, experiments, results
from harness.cli.experiments import exit_code
from harness.core.errors import HarnessError

__all__ = ["COMMANDS", "build_parser", "exit_code", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ha-bench", description="Chaos and failover benchmarks for Apache Airflow HA."
    )
    parser.add_argument("--version", action="version", version=f"ha-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cluster.add_up(sub)
    cluster.add_probe(sub)
    experiments.add_list(sub)
    experiments.add_validate(sub)
    experiments.add_schema(sub)
    run = experiments.add_run(sub)
    experiments.add_soak(sub, run)
    cluster.add_kind(sub)
    results.add_report(sub)
    results.add_compare(sub)
    results.add_runs(sub)
    results.add_check(sub)
    return parser


COMMANDS = {
    "up": cluster.cmd_up,
    "probe": cluster.cmd_probe,
    "list": experiments.cmd_list,
    "validate": experiments.cmd_validate,
    "schema": experiments.cmd_schema,
    "run": experiments.cmd_run,
    "soak": experiments.cmd_soak,
    "kind": cluster.cmd_kind,
    "report": results.cmd_report,
    "compare": results.cmd_compare,
    "runs": results.cmd_runs,
    "check": results.cmd_check,
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
