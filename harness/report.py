"""A run's Markdown report from its experiments' ``summary.json`` files (measured data only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def load_summaries(run_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(name, summary) of each experiment in a run dir, or of the one experiment dir given."""
    own = run_dir / "summary.json"
    if own.exists():
        data = json.loads(own.read_text())
        if "repetitions" in data:
            return [(run_dir.name, data)]
    out = []
    for path in sorted(run_dir.glob("*/summary.json")):
        out.append((path.parent.name, json.loads(path.read_text())))
    return out


def render_markdown(run_dir: Path) -> str:
    summaries = load_summaries(run_dir)
    lines = [f"# airflow-ha-bench run `{run_dir.name}`", ""]
    if not summaries:
        return "\n".join([*lines, "No experiment finished a repetition.", ""])
    meta = summaries[0][1].get("metadata", {})
    machine = meta.get("machine", {})
    lines += [
        f"Airflow {meta.get('airflow_version')} on the `{meta.get('platform')}` platform, "
        f"harness {meta.get('harness_version')}, {machine.get('cpus')} CPUs "
        f"({machine.get('system')}).",
        "",
        "| experiment | repetitions | downtime through LB (s) | recovery (s) | failed tasks |"
        " verdicts |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in summaries:
        reps = s["repetitions"]
        verdicts = ", ".join(
            f"{k}: **{v['verdict']}**" + ("" if v.get("gate", True) else " (not a gate)")
            for k, v in s["verdicts"].items()
        )
        lines.append(
            f"| {name} | {len(reps)} | {', '.join(_fmt(r['downtime_s']) for r in reps)} | "
            f"{', '.join(_fmt(r['recovery_s']) for r in reps)} | "
            f"{', '.join(_fmt(r.get('failed_tasks')) for r in reps)} | {verdicts} |"
        )
    lines += ["", "## Details", ""]
    for name, s in summaries:
        lines += [f"### {name}", "", s["experiment_definition"]["description"], ""]
        overrides = s.get("metadata", {}).get("airflow_config_overrides") or {}
        lines.append(
            "Airflow config overrides: "
            + (", ".join(f"`{k}={v}`" for k, v in overrides.items()) or "none")
        )
        lines.append("")
        for i, r in enumerate(s["repetitions"], 1):
            keys = (
                "downtime_s",
                "recovery_s",
                "time_to_detect_s",
                "replacement_ready_s",
                "failed_tasks",
                "scheduling_resumed_s",
                "start_latency_before_max_s",
                "task_start_gap_before_s",
                "task_start_gap_after_s",
            )
            figures = ", ".join(f"{k}={_fmt(r.get(k))}" for k in keys)
            lines.append(f"- repetition {i} (seed {r.get('seed')}): {figures}")
        for k, v in s["verdicts"].items():
            lines.append(f"- {k}: {v['verdict']} — {v['why']}; measured {v['measured']}")
        lines.append("")
    return "\n".join(lines)


def write_run_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.md`` and ``run_dir/summary.json`` (index of experiments)."""
    report = run_dir / "report.md"
    report.write_text(render_markdown(run_dir))
    if (run_dir / "summary.json").exists():
        return report  # a single experiment's directory: its summary is the contract
    index = {
        "run_id": run_dir.name,
        "experiments": {
            name: {
                "experiment": s["experiment"],
                "params": s["params"],
                "downtime_s": [r["downtime_s"] for r in s["repetitions"]],
                "recovery_s": [r["recovery_s"] for r in s["repetitions"]],
                "verdicts": {k: v["verdict"] for k, v in s["verdicts"].items()},
            }
            for name, s in load_summaries(run_dir)
        },
    }
    (run_dir / "summary.json").write_text(json.dumps(index, indent=2) + "\n")
    return report
