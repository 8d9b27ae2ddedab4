"""Synthesized histories for the analysis tests: event rows of the shapes a run records."""

from __future__ import annotations

from typing import Any

from harness.core.airflow_api import LIVENESS
from harness.core.history import events_frame

OFFSET = 1_000.0  # t_wall = t_mono + OFFSET


def ev(t: float, type_: str, **fields: Any) -> dict[str, Any]:
    return {"t_mono": t, "t_wall": t + OFFSET, "type": type_, **fields}


def marker(t: float, name: str, **detail: Any) -> dict[str, Any]:
    return ev(t, "marker", name=name, detail=detail or None)


def probe(t: float, ok: bool, target: str = "lb", endpoint: str = LIVENESS,
          source: str = "prober", latency: float = 0.005) -> dict[str, Any]:  # fmt: skip
    return ev(t, "probe", source=source, target=target, endpoint=endpoint, ok=ok,
              outcome="ok" if ok else "refused", latency_s=latency)  # fmt: skip


def trigger(t: float, run_id: str) -> dict[str, Any]:
    return ev(t, "workload", event="trigger", phase="ok", dag_id="d", run_id=run_id)


def start(t: float, run_id: str, task: str = "a", try_number: int = 1) -> dict[str, Any]:
    """A ledger ``start`` row at mono ``t`` (wall ``t + OFFSET``)."""
    return {"phase": "start", "run_id": run_id, "dag_id": "d", "task_id": task,
            "try_number": try_number, "t_wall": t + OFFSET}  # fmt: skip


def probes(t0: float, t1: float, *, down: tuple[tuple[float, float], ...] = (),
           step: float = 0.05) -> list[dict[str, Any]]:  # fmt: skip
    """LB liveness probes every ``step`` from ``t0`` to ``t1``, failing inside ``down``."""
    out, k = [], 0
    while t0 + k * step < t1:
        t = round(t0 + k * step, 6)
        out.append(probe(t, not any(a <= t < b for a, b in down)))
        k += 1
    return out


def repetition(*, fault: float = 20.0, end: float = 60.0, down=(), extra=(), start_at=0.0,
               target: str = "api-server-0", seen_down: bool = True):  # fmt: skip
    """A repetition: prober from ``start_at``, baseline from 10 s, a kill at ``fault``."""
    rows = [marker(start_at, "prober_start", source="prober", interval_s=0.05),
            marker(10.0, "baseline_start"), ev(fault, "fault", op="kill", target=target,
            phase="invoke"), ev(fault + 0.01, "fault", op="kill", target=target, phase="ok"),
            marker(end, "run_end"), ev(1.0, "workload", event="unpause", dag_id="d")]  # fmt: skip
    if seen_down:
        rows.append(ev(fault + 0.02, "lifecycle", replica=target, state="exited"))
    return events_frame(rows + probes(start_at, end, down=down) + list(extra))
