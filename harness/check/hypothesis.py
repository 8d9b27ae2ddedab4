"""Hypotheses (SLOs and expectations under study) and the verdicts over a run's repetitions.

A hypothesis is ``metric op value`` over one repetition's figures, e.g. ``downtime_s <= 1``.
A ``gate`` is an SLO: refuting it fails the run (and its pytest case). A hypothesis that is
not a gate is an expectation under study: reported as confirmed or refuted without failing.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
       "==": operator.eq}  # fmt: skip
Verdict = Literal["confirmed", "refuted", "unknown"]


class Hypothesis(BaseModel):
    """``metric op value``; ``why`` says where the expectation comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    op: Literal["<=", "<", ">=", ">", "=="]
    value: bool | int | float
    why: str = ""
    gate: bool = True

    @property
    def label(self) -> str:
        return f"{self.metric} {self.op} {self.value}"

    def check(self, figures: dict[str, Any]) -> dict[str, Any]:
        measured = figures.get(self.metric)
        if measured is None:
            verdict = "unknown"
        else:
            verdict = "confirmed" if OPS[self.op](measured, self.value) else "refuted"
        return {"hypothesis": self.label, "why": self.why, "measured": measured,
                "verdict": verdict}  # fmt: skip


def combine(verdicts: Iterable[str]) -> Verdict:
    """Over repetitions: refuted if any is, else unknown if any is, else confirmed."""
    outcomes = set(verdicts)
    if "refuted" in outcomes:
        return "refuted"
    return "unknown" if "unknown" in outcomes else "confirmed"


def evaluate(
    hypotheses: Iterable[Hypothesis], repetitions: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each hypothesis's verdict over every repetition, plus the ledger checker's."""
    verdicts: dict[str, dict[str, Any]] = {}
    for h in hypotheses:
        checks = [h.check(r) for r in repetitions]
        verdicts[h.label] = {
            "verdict": combine(c["verdict"] for c in checks), "why": h.why, "gate": h.gate,
            "measured": [c["measured"] for c in checks],
        }  # fmt: skip
    executions = [r["executions"]["valid"] for r in repetitions]
    verdicts["executions"] = {
        "verdict": combine("refuted" if v is False else "unknown" if v is None else "confirmed"
                           for v in executions),
        "why": "no lost or duplicated task executions (ledger checker)",
        "gate": True,
        "measured": [r["executions"]["problems"] for r in repetitions],
    }  # fmt: skip
    return verdicts


def failed_verdicts(summary: dict[str, Any]) -> list[str]:
    """Human-readable lines for every refuted gate (SLO), with the measured figures."""
    return [
        f"{name}: refuted, measured {v['measured']} ({v['why']})"
        for name, v in summary["verdicts"].items()
        if v["verdict"] == "refuted" and v.get("gate", True)
    ]
