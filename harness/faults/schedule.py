"""Fault schedules: a seeded random mix of faults over a soak, as plain data.

:func:`random_schedule` draws, from ``seed`` alone, when each fault happens (gaps around
``mean_gap_s``), which op (from ``ops``) and which target (a replica the op applies to),
and how long a held fault (pause, freeze, CPU throttle, stopped service) is held — the
same seed gives the same schedule, so a soak that found something can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from harness.core.errors import HarnessError

REPLICA_OPS = ("kill", "terminate", "pause", "freeze", "cpu_throttle")
SERVICE_OPS = ("stop_service",)
SERVICES = ("postgres", "redis")
OPS = REPLICA_OPS + SERVICE_OPS
HELD = ("pause", "stop_service", "freeze", "cpu_throttle")  # held hold_s, then undone
THROTTLE_CORES = 0.05  # a soak's cpu_throttle: 5 % of a core, as scheduler-cpu-starve


@dataclass(frozen=True)
class ScheduledFault:
    """``op`` on ``target`` at ``at_s`` seconds into the soak (``hold_s`` for a held op:
    how long before the undo; ``cores`` for cpu_throttle)."""

    at_s: float
    op: str
    target: str
    hold_s: float = 0.0
    grace_s: float | None = None
    cores: float | None = None

    def describe(self) -> dict:
        return asdict(self)


def eligible(op: str, replicas: Mapping[str, Sequence[str]]) -> list[str]:
    """The replicas ``op`` can hit: services for stop_service, Airflow replicas otherwise."""
    if op in SERVICE_OPS:
        return [r for r in SERVICES if r in replicas.get("service", ())]
    return [r for component, names in sorted(replicas.items()) if component != "service"
            for r in names]  # fmt: skip


def random_schedule(
    ops: Sequence[str],
    replicas: Mapping[str, Sequence[str]],
    *,
    duration_s: float,
    seed: int,
    mean_gap_s: float = 45.0,
    hold_s: tuple[float, float] = (3.0, 10.0),
    start_s: float = 0.0,
) -> list[ScheduledFault]:
    """Faults from ``start_s`` until ``duration_s``: gaps uniform in [0.5, 1.5] x
    ``mean_gap_s``; ``replicas`` maps a component (``service`` for PostgreSQL and Redis) to
    its replica names."""
    unknown = sorted(set(ops) - set(OPS))
    if unknown or not ops:
        raise HarnessError(f"unknown fault op(s) {unknown or ops!r} for a soak",
                           fix=f"use some of: {', '.join(OPS)}")  # fmt: skip
    rng = random.Random(seed)
    out: list[ScheduledFault] = []
    t = start_s + rng.uniform(0.5, 1.5) * mean_gap_s
    while t < duration_s:
        op = rng.choice(list(ops))
        targets = eligible(op, replicas)
        if targets:
            hold = round(rng.uniform(*hold_s), 2) if op in HELD else 0.0
            cores = THROTTLE_CORES if op == "cpu_throttle" else None
            out.append(ScheduledFault(round(t, 2), op, rng.choice(targets), hold, cores=cores))
        t += rng.uniform(0.5, 1.5) * mean_gap_s
    if not out:
        raise HarnessError(f"no fault fits a {duration_s:g} s soak with gaps of ~{mean_gap_s:g} s",
                           fix="run longer or lower mean_gap_s")  # fmt: skip
    return out
