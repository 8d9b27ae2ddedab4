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
        """The verdict on one repetition's figures.

        A censored figure (its event never happened while observed for X s) is a lower
        bound: ``<=``/``<`` are refuted once X reaches the bound, ``>=``/``>`` confirmed;
        a shorter observation cannot tell (unknown). ``unknown`` otherwise means the figure
        could not be measured at all.
        """
        measured = figures.get(self.metric)
        censored = (figures.get("censored") or {}).get(self.metric)
        if measured is None and censored is not None:
            verdict = _censored_verdict(self.op, float(censored), self.value)
        elif measured is None or not isinstance(measured, int | float):  # bool is an int
            verdict = "unknown"  # not a number: nothing to compare (never a crash)
        else:
            verdict = "confirmed" if OPS[self.op](measured, self.value) else "refuted"
        return {"hypothesis": self.label, "why": self.why, "measured": measured,
                "censored": censored, "verdict": verdict}  # fmt: skip


def _censored_verdict(op: str, observed: float, bound: float) -> Verdict:
    """The verdict on a value known only to exceed ``observed`` ("never, watched X s")."""
    if op in ("<=", "<"):
        return "refuted" if observed >= bound else "unknown"
    if op in (">=", ">"):
        return "confirmed" if observed >= bound else "unknown"
    return "unknown"


def combine(verdicts: Iterable[str]) -> Verdict:
    """Over repetitions: refuted if any is, else unknown if any is, else confirmed."""
    outcomes = set(verdicts)
    if "refuted" in outcomes:
        return "refuted"
    return "unknown" if "unknown" in outcomes else "confirmed"


def unknown_gates(hypotheses: Iterable[Hypothesis], figures: dict[str, Any]) -> list[str]:
    """Gates the repetition could not decide: a reason to call it invalid, never a pass."""
    return [f"gate {h.label} could not be measured" for h in hypotheses
            if h.gate and h.check(figures)["verdict"] == "unknown"]  # fmt: skip


def evaluate(
    hypotheses: Iterable[Hypothesis], repetitions: list[dict[str, Any]], *,
    executions_gate: bool = True,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each hypothesis's verdict over the *valid* repetitions, plus the ledger checker's.

    ``measured`` lists each valid repetition's figure (None where censored) and
    ``censored`` the seconds it was watched for (None where measured); with no valid
    repetition every verdict is unknown.
    """
    repetitions = [r for r in repetitions if r.get("valid", True)]
    verdicts: dict[str, dict[str, Any]] = {}
    for h in hypotheses:
        checks = [h.check(r) for r in repetitions]
        verdicts[h.label] = {
            "verdict": combine(c["verdict"] for c in checks) if checks else "unknown",
            "why": h.why, "gate": h.gate,
            "measured": [c["measured"] for c in checks],
            "censored": [c["censored"] for c in checks],
        }  # fmt: skip
    executions = [r["executions"]["valid"] for r in repetitions]
    verdicts["executions"] = {
        "verdict": combine("refuted" if v is False else "unknown" if v is None else "confirmed"
                           for v in executions) if executions else "unknown",
        "why": "no lost, duplicated or overlapping task executions (the execution checkers)"
        + ("" if executions_gate else "; a reproducer's finding, not a gate"),
        "gate": executions_gate,
        "measured": [r["executions"]["problems"] for r in repetitions],
    }  # fmt: skip
    return verdicts


def _shown(v: dict[str, Any]) -> list[Any]:
    censored = v.get("censored") or [None] * len(v["measured"])
    return [m if c is None else f"never (>= {c:.1f} s)" for m, c in
            zip(v["measured"], censored, strict=False)]  # fmt: skip


def failed_verdicts(summary: dict[str, Any]) -> list[str]:
    """Human-readable lines for every refuted gate (SLO), with the measured figures."""
    return [
        f"{name}: refuted, measured {_shown(v)} ({v['why']})"
        for name, v in summary["verdicts"].items()
        if v["verdict"] == "refuted" and v.get("gate", True)
    ]


def invalid_run(summary: dict[str, Any]) -> list[str]:
    """Why a run's result cannot be trusted (exit 3): too few valid repetitions, each with
    its reasons; empty when the run is valid."""
    if summary.get("valid", True):
        return []
    reps = summary.get("repetitions", [])
    lines = [f"{summary.get('valid_repetitions', 0)} of {summary.get('repeat', len(reps))} "
             f"repetitions valid"]  # fmt: skip
    lines += [f"repetition {r.get('repetition')}: {'; '.join(r.get('invalid_reasons', []))}"
              for r in reps if not r.get("valid", True)]  # fmt: skip
    return lines
