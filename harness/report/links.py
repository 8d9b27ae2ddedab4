"""A report's block on network faults: each cut or slowed link, when and for how long, and
what crossed it (see :mod:`harness.analysis.links`); a sample of the replicas' lines."""

from __future__ import annotations

from typing import Any

from harness.analysis.links import AFTER_HEAL_S
from harness.report.cells import as_dict, fmt, millis, seconds_text
from harness.report.content import Block, Table
from harness.report.runs import Variant

LOG_COLUMNS = (("heartbeat", "heartbeat"), ("execution_api", "Execution API"), ("db", "DB"),
               ("broker", "broker"), ("error", "other errors"))  # fmt: skip
NOTE = (
    "Each network fault: the link (`↔` both ways, `→` one way), when it was cut or slowed "
    "(seconds after the first fault) and for how long (to its heal; *never healed*: to the "
    "end of observation), and what crossed it meanwhile: probes failed of sent with the p99 "
    "of those answered (the LB and each api-server directly), Locust requests, task "
    "instances that failed or were set up for retry, and the replicas' log lines per kind "
    "(up to {after:g} s after the heal as well: a cut often shows when it ends). "
    "*not read*: the repetition kept no replica logs."
)


def _params(link: dict[str, Any]) -> str:
    p = as_dict(link.get("params"))
    parts = [str(p["mode"])] if "mode" in p else []
    if "delay_ms" in p:
        parts.append(f"{fmt(p['delay_ms'], 0)} ms" + (f" ± {fmt(p['jitter_ms'], 0)} ms"
                                                       if p.get("jitter_ms") else ""))  # fmt: skip
    if "percent" in p:
        parts.append(f"{fmt(p['percent'], 0)} %")
    if "rate_kbit" in p:
        parts.append(f"{fmt(p['rate_kbit'], 0)} kbit/s")
    return f"{link.get('op')} " + " ".join(parts) if parts else str(link.get("op"))


def _probe_cell(probes: dict[str, Any]) -> str:
    cells = []
    for target in sorted(probes, key=lambda t: (t != "lb", t)):
        p = as_dict(probes[target])
        cells.append(f"{target} {p.get('failed', 0)}/{p.get('sent', 0)}"
                     f" (p99 {millis(p.get('p99_s'))} ms)")  # fmt: skip
    return "; ".join(cells) or "-"


def _log_cells(logs: Any) -> list[str]:
    if logs is None:
        return ["not read"] * len(LOG_COLUMNS)
    counts = as_dict(as_dict(logs).get("counts"))
    by_replica = as_dict(as_dict(logs).get("by_replica"))
    cells = []
    for kind, _ in LOG_COLUMNS:
        who = [f"{r} {n[kind]}" for r, n in sorted(by_replica.items()) if kind in as_dict(n)]
        cells.append(f"{counts.get(kind, 0)}" + (f" ({', '.join(who)})" if who else ""))
    return cells


def links_block(v: Variant, after_heal_s: float = AFTER_HEAL_S) -> Block | None:
    """The variant's network faults per repetition, or None when it has none."""
    rows = []
    for r in v.repetitions:
        for link in r.figures.get("links") or []:
            link = as_dict(link)
            held = seconds_text(link.get("held_s")) + ("" if link.get("healed")
                                                       else " (never healed)")  # fmt: skip
            locust = as_dict(link.get("locust"))
            tasks = as_dict(link.get("tasks"))
            rows.append([
                f"{r.number}" + ("" if r.valid else " (invalid)"), f"`{link.get('link')}`",
                _params(link), seconds_text(link.get("at_s")), held,
                _probe_cell(as_dict(link.get("probes"))),
                f"{locust.get('failed', 0)}/{locust.get('sent', 0)}" if locust else "-",
                f"{tasks.get('failed', 0)} / {tasks.get('up_for_retry', 0)}",
                *_log_cells(link.get("logs")),
            ])  # fmt: skip
    if not rows:
        return None
    headers = ["repetition", "link", "fault", "at", "held", "probes failed/sent",
               "Locust failed/sent", "tasks failed / retried",
               *[label for _, label in LOG_COLUMNS]]  # fmt: skip
    return Block(NOTE.format(after=after_heal_s), Table(headers, rows))


def link_samples_block(v: Variant) -> Block | None:
    """The first lines of each kind the replicas logged across the first cut link that has
    any (the evidence behind the counts)."""
    for r in v.repetitions:
        for link in r.figures.get("links") or []:
            found = as_dict(as_dict(link).get("logs")).get("samples") or []
            if found:
                rows = [[seconds_text(s.get("at_s")), f"`{s.get('replica')}`", str(s.get("kind")),
                         _code(s.get("line")), _code(s.get("cause"))]
                        for s in map(as_dict, found)]  # fmt: skip
                note = (f"Repetition {r.number}, `{as_dict(link).get('link')}`: the first "
                        "lines of each kind (at: seconds after the first fault).")  # fmt: skip
                return Block(note, Table(["at", "replica", "kind", "line", "cause"], rows))
    return None


def _code(text: Any) -> str:
    if not isinstance(text, str) or not text:
        return "-"
    return "`" + text.replace("`", "'")[:240] + "`"  # `|` is escaped with the whole row
