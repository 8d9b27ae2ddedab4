"""The moments a repetition's figures are measured from, read off its history's markers.

The fault time is the first fault ``invoke`` that is not a preparation (a snapshot a later
fault loads, :data:`harness.core.faultops.PREPARATION`).
Windows: *baseline* from ``baseline_start`` to the fault (warm-up excluded), *observed*
from the fault to ``run_end`` (what a censored figure was watched for), and the ledger's
observation to ``drain_end`` (task starts after ``run_end`` are still seen).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.core.faultops import PREPARATION

NAN = float("nan")


def col(df: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name``, or all-None when the history has no such field."""
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index)


def markers(df: pd.DataFrame, name: str) -> pd.DataFrame:
    return df[(df["type"] == "marker") & (col(df, "name") == name)]


@dataclass(frozen=True)
class Timeline:
    fault_mono: float
    fault_wall: float
    run_end_mono: float | None
    baseline_start_mono: float | None
    drain_end_mono: float | None

    @classmethod
    def of(cls, df: pd.DataFrame) -> Timeline:
        invokes = df[(df["type"] == "fault") & (col(df, "phase") == "invoke")
                     & ~col(df, "op").isin(PREPARATION)]  # fmt: skip

        def first(name: str) -> float | None:
            m = markers(df, name)["t_mono"]
            return float(m.iloc[0]) if len(m) else None

        return cls(
            fault_mono=float(invokes["t_mono"].min()) if len(invokes) else NAN,
            fault_wall=float(invokes["t_wall"].min()) if len(invokes) else NAN,
            run_end_mono=first("run_end"),
            baseline_start_mono=first("baseline_start"),
            drain_end_mono=first("drain_end"),
        )

    @property
    def has_fault(self) -> bool:
        return not math.isnan(self.fault_mono)

    def wall(self, mono: float) -> float:
        """The wall time of a monotonic instant (offset taken at the fault)."""
        return mono + (self.fault_wall - self.fault_mono)

    @property
    def observed_s(self) -> float | None:
        """Seconds from the fault to the end of observation (``run_end``)."""
        if self.run_end_mono is None or not self.has_fault:
            return None
        return self.run_end_mono - self.fault_mono

    @property
    def ledger_end_wall(self) -> float | None:
        """Until when task starts were watched (the end of the drain, else ``run_end``)."""
        end = self.drain_end_mono if self.drain_end_mono is not None else self.run_end_mono
        return None if end is None or not self.has_fault else self.wall(end)

    def baseline_window(self) -> tuple[float, float]:
        start = self.baseline_start_mono if self.baseline_start_mono is not None else -math.inf
        return start, self.fault_mono if self.has_fault else math.inf


class Censor:
    """Collects censored figures: ``{metric: seconds watched without seeing the event}``."""

    def __init__(self) -> None:
        self.observed: dict[str, float] = {}

    def value(self, metric: str, value: float | None, observed_s: float | None) -> float | None:
        """``value``, or None with ``metric`` censored for ``observed_s`` when it is None."""
        if value is None and observed_s is not None:
            self.observed[metric] = round(float(observed_s), 6)
        return value

    def merge(self, other: dict[str, Any]) -> None:
        self.observed.update(other)
