"""The experiment model: topology overrides + workload + load + one fault + hypotheses.

These pydantic models are the schema of an experiment once its parameters are applied;
:mod:`harness.run.catalogue` loads them from YAML files (with parameters and expressions)
and publishes the file schema (``ha-bench schema``). Unknown fields are errors.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.check.hypothesis import Hypothesis
from harness.core.airflow_api import LIVENESS
from harness.core.faultops import NETWORK_OPS

FaultOp = Literal[
    "none",
    "kill",
    "force_delete",
    "terminate",
    "pause",
    "stop_service",
    "evict",
    "cpu_throttle",
    "memory_limit",
    "freeze",
    "clock_skew",
    "disk_fill",
    "snapshot",
    "partition",
    "latency",
    "loss",
    "bandwidth",
]
_NEEDS = {"cpu_throttle": "cores", "memory_limit": "bytes", "clock_skew": "skew_s",
          "partition": "peers", "latency": "delay_ms", "loss": "percent",
          "bandwidth": "rate_kbit"}  # fmt: skip


class Fault(BaseModel):
    """One fault: ``op`` on ``target`` — a replica name (``api-server-0``, ``postgres``),
    ``<component>/all`` for every replica of a component in a row, or
    ``<component>/victim`` for the replica running the victim task (from the ledger).

    Held faults — ``pause``, ``stop_service``, ``freeze``, ``cpu_throttle``,
    ``memory_limit``, ``clock_skew``, ``disk_fill`` and the network faults ``partition``,
    ``latency``, ``loss``, ``bandwidth`` (between ``target`` and ``peers``; ``heal`` undoes
    them) — last ``hold_s`` and are then undone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: FaultOp
    target: str = Field(pattern=r"^[a-z][a-z0-9-]*(/(all|victim))?$")
    hold_s: float = Field(0.0, ge=0, description="held faults: seconds before the undo")
    grace_s: float | None = Field(None, ge=0, description="terminate: grace (None: replica's)")
    cores: float | None = Field(
        None, gt=0, le=64, description="cpu_throttle: the CPU quota in cores (0.05: 5 % of one)"
    )
    bytes: int | None = Field(None, gt=0, description="memory_limit: the limit in bytes")
    oom_group: bool = Field(
        False,
        description="memory_limit: an OOM kill takes the whole replica (as Kubernetes on "
        "cgroup v2), not only the largest process",
    )
    skew_s: float | None = Field(
        None, description="clock_skew: seconds the wall clock moves (negative: behind)"
    )
    peers: tuple[str, ...] = Field(
        (),
        description="network faults: the other side of the link — replica names or "
        "<component>/all (the target's traffic to and from them is cut or slowed)",
    )
    both_ways: bool = Field(
        True, description="network faults: both directions (False: target -> peers only)"
    )
    mode: Literal["blackhole", "reject"] = Field(
        "blackhole",
        description="partition: blackhole drops (connects time out), reject fails fast",
    )
    delay_ms: float | None = Field(None, gt=0, description="latency: added delay (ms)")
    jitter_ms: float = Field(0.0, ge=0, description="latency: jitter (ms)")
    percent: float | None = Field(None, gt=0, le=100, description="loss: packets dropped (%)")
    rate_kbit: float | None = Field(None, gt=0, description="bandwidth: the rate (kbit/s)")

    @model_validator(mode="after")
    def _arguments(self) -> Fault:
        need = _NEEDS.get(self.op)
        if self.op in NETWORK_OPS and not self.peers:
            raise ValueError(f"{self.op} needs peers (the other side of the link)")
        if need is not None and not getattr(self, need):
            raise ValueError(f"{self.op} needs {need}")
        return self


class LogMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    replica: str
    pattern: str = Field(description="a Python regular expression, searched in each line")


class TaskStateMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dag_id: str
    state: str
    task_id: str | None = None


class Trigger(BaseModel):
    """Fire the fault when a condition holds (instead of at a seeded random moment): a
    ledger row with these fields, a replica's log line, or a task instance state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ledger: dict[str, Any] | None = None
    log: LogMatch | None = None
    task_state: TaskStateMatch | None = None
    timeout_s: float = Field(120.0, gt=0, description="never held by then: invalid repetition")
    delay_s: float = Field(0.0, ge=0, description="seconds from the condition to the fault")

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        given = [k for k in ("ledger", "log", "task_state") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of ledger, log, task_state")
        return self


class Step(Fault):
    """One fault of a fixed sequence, ``at_s`` seconds into the schedule (no earlier than
    the previous step ended: a held step's undo comes first)."""

    at_s: float = Field(ge=0, description="seconds from the schedule's start")


class Schedule(BaseModel):
    """Faults over time: a fixed sequence (``steps``), or a soak — a seeded random mix of
    ``ops`` for ``duration_s`` (gaps ~``mean_gap_s``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: tuple[Step, ...] = Field((), description="a fixed sequence of faults")
    ops: tuple[
        Literal["kill", "terminate", "pause", "freeze", "cpu_throttle", "stop_service"], ...
    ] = ()
    duration_s: float | None = Field(None, gt=0, description="a soak's length")
    mean_gap_s: float = Field(45.0, gt=0)
    hold_s: tuple[float, float] = (3.0, 10.0)

    @model_validator(mode="after")
    def _sequence_or_soak(self) -> Schedule:
        if bool(self.steps) == bool(self.ops):
            raise ValueError("give steps (a sequence) or ops (a soak), not both or neither")
        if self.ops and self.duration_s is None:
            raise ValueError("a soak (ops) needs duration_s")
        if self.steps and self.duration_s is not None:
            raise ValueError("a sequence ends with its last step: leave duration_s out")
        if list(self.steps) != sorted(self.steps, key=lambda s: s.at_s):
            raise ValueError("steps must be in at_s order")
        return self


class Reproducer(BaseModel):
    """The known Airflow HA bug an experiment reproduces, and what a run should show if the
    version under test still has it. A reproducer that does not reproduce is a finding too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issue: str = Field(description="e.g. apache/airflow#58570")
    title: str
    versions_reported: str
    reproduced_when: str = Field(description="the hypothesis label refuted when it reproduces")


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
    fault: Fault | None = Field(None, description="the fault (required unless a schedule)")
    topology: dict[str, Any] = Field(default_factory=dict)
    hypotheses: tuple[Hypothesis, ...] = ()
    warmup_s: float = Field(5.0, ge=0)
    steady_hold_s: float = Field(3.0, ge=0)
    baseline_s: float = Field(5.0, ge=0)
    fault_window_s: float = Field(2.0, ge=0)
    recover_timeout_s: float = Field(90.0, gt=0)
    settle_s: float = Field(5.0, ge=0)
    detect_window_s: float = Field(
        5.0, gt=0, description="an LB outage starting this soon after the fault is its doing"
    )
    load_users: int = Field(0, ge=0)
    workload_dags: tuple[str, ...] = ("ha_bench_short",)
    trigger_interval_s: float = Field(
        3.0, gt=0,
        description="mean seconds between triggers (3 s keeps a one-of-each cluster on 2 "
        "cores from building a backlog: at 1 s its trigger-to-start latency grew without bound)",
    )  # fmt: skip
    trigger_arrival: Literal["poisson", "fixed"] = "poisson"
    headline: tuple[str, ...] = Field(
        ("downtime_s", "recovery_s"),
        min_length=1,
        description="the figures that matter for this fault, first in the report",
    )
    drain_timeout_s: float = Field(45.0, ge=0)
    expect_lost: bool = False
    expect_duplicates: bool = False
    stuck_after_s: float = Field(
        120.0, gt=0, description="a task instance queued or running longer is stuck"
    )
    lb_endpoints: tuple[str, ...] = Field((LIVENESS,), min_length=1)
    victim_dag: str | None = None
    victim_conf: dict[str, Any] = Field(default_factory=dict)
    victim_wait_s: float = Field(3.0, ge=0)
    victim_timeout_s: float = Field(120.0, gt=0)
    reproduces: Reproducer | None = None
    trigger: Trigger | None = None
    schedule: Schedule | None = Field(None, description="a soak: a seeded mix of faults")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fault_or_schedule(self) -> Experiment:
        if (self.fault is None) == (self.schedule is None):
            raise ValueError("give a fault or a schedule (a soak), not both or neither")
        if self.trigger is not None and self.schedule is not None:
            raise ValueError("a trigger fires one fault: it cannot go with a schedule")
        return self

    def describe(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def replace(self, **changes: Any) -> Experiment:
        """A copy with ``changes``, validated like the original."""
        return Experiment.model_validate({**self.model_dump(), **changes})
