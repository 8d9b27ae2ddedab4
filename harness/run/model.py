"""The experiment model: topology overrides + workload + load + one fault + hypotheses.

These pydantic models are the schema of an experiment once its parameters are applied;
:mod:`harness.run.catalogue` loads them from YAML files (with parameters and expressions)
and publishes the file schema (``ha-bench schema``). Unknown fields are errors.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.check.hypothesis import Hypothesis
from harness.core.airflow_api import LIVENESS

FaultOp = Literal["kill", "terminate", "pause", "stop_service", "evict"]


class Fault(BaseModel):
    """One fault: ``op`` on ``target`` — a replica name (``api-server-0``, ``postgres``),
    ``<component>/all`` for every replica of a component in a row, or
    ``<component>/victim`` for the replica running the victim task (from the ledger)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: FaultOp
    target: str = Field(pattern=r"^[a-z][a-z0-9-]*(/(all|victim))?$")
    hold_s: float = Field(0.0, ge=0, description="pause / stop_service: seconds before undo")
    grace_s: float | None = Field(None, ge=0, description="terminate: grace (None: replica's)")


class Experiment(BaseModel):
    """An experiment as data.

    ``topology`` holds topology overrides, Airflow config overrides included under
    ``airflow_config`` (recorded and stated in every report). A ``victim_dag`` is triggered
    once after the baseline; the fault waits until its first task has started (ledger) plus
    ``victim_wait_s`` and the seeded offset, so it lands mid-task; the run then waits up to
    ``victim_timeout_s`` for the victim's outcome. ``lb_endpoints`` are probed through the
    load balancer every 50 ms (the first is the liveness endpoint downtime is measured on).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    description: str
    fault: Fault
    topology: dict[str, Any] = Field(default_factory=dict)
    hypotheses: tuple[Hypothesis, ...] = ()
    warmup_s: float = Field(5.0, ge=0)
    steady_hold_s: float = Field(3.0, ge=0)
    baseline_s: float = Field(5.0, ge=0)
    fault_window_s: float = Field(2.0, ge=0)
    recover_timeout_s: float = Field(90.0, gt=0)
    settle_s: float = Field(5.0, ge=0)
    load_users: int = Field(0, ge=0)
    workload_dags: tuple[str, ...] = ("ha_bench_short",)
    trigger_interval_s: float = Field(3.0, gt=0)
    drain_timeout_s: float = Field(45.0, ge=0)
    expect_lost: bool = False
    expect_duplicates: bool = False
    lb_endpoints: tuple[str, ...] = Field((LIVENESS,), min_length=1)
    victim_dag: str | None = None
    victim_conf: dict[str, Any] = Field(default_factory=dict)
    victim_wait_s: float = Field(3.0, ge=0)
    victim_timeout_s: float = Field(120.0, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def replace(self, **changes: Any) -> Experiment:
        """A copy with ``changes``, validated like the original."""
        return Experiment.model_validate({**self.model_dump(), **changes})
