"""Declarative cluster topology: what to run, how many replicas, which config overrides.

A topology is plain data (pydantic), loadable from YAML, the same for every platform::

    airflow_version: "3.3.2"
    api_servers: 2
    schedulers: 2
    workers: 2
    airflow_config:
      scheduler.task_instance_heartbeat_timeout: "60"
    clock_skew_replicas: [scheduler-0]   # may get clock_skew faults
    postgres_disk_mb: 256                # PostgreSQL's data on a disk that can fill up
    network: pod                         # replicas in network namespaces (needs root)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.core.errors import HarnessError

DEFAULT_AIRFLOW_VERSION = "3.3.2"
# every replica its own host by default; without root the local cluster falls back to loopback
DEFAULT_NETWORK: Literal["loopback", "pod"] = "pod"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "worker")
_CONFIG_KEY = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


class Probe(BaseModel):
    """A Kubernetes-style probe: run every ``period_s``; ``failure_threshold`` misses flip it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_delay_s: float = Field(0.0, ge=0)
    period_s: float = Field(0.5, gt=0)
    timeout_s: float = Field(2.0, gt=0)
    failure_threshold: int = Field(2, ge=1)
    success_threshold: int = Field(1, ge=1)


class RestartPolicy(BaseModel):
    """Like a Deployment replacing a dead pod: at once while stable, with backoff in a crash loop.

    A replica that exits within ``stable_after_s`` of its start is restarted after a delay
    starting at ``initial_backoff_s`` and doubling up to ``max_backoff_s`` (CrashLoopBackOff).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    initial_backoff_s: float = Field(1.0, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)
    stable_after_s: float = Field(30.0, ge=0)


class Topology(BaseModel):
    """The reference HA Airflow cluster and its knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "reference-ha"
    airflow_version: str = DEFAULT_AIRFLOW_VERSION
    api_servers: int = Field(2, ge=1, le=8)
    api_server_workers: int = Field(1, ge=1, le=8, description="uvicorn workers per api-server")
    schedulers: int = Field(2, ge=1, le=8)
    dag_processors: int = Field(1, ge=0, le=4)
    triggerers: int = Field(1, ge=0, le=4)
    workers: int = Field(2, ge=1, le=8)
    worker_concurrency: int = Field(4, ge=1, le=32)
    airflow_config: dict[str, str] = Field(
        default_factory=dict, description="'section.key' -> value, applied to every component"
    )
    replica_airflow_config: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="replica -> {'section.key': value}: one replica configured apart from "
        "the rest (e.g. a different [api_auth] jwt_secret on one api-server)",
    )
    restart: RestartPolicy = RestartPolicy()
    readiness: Probe = Probe()
    liveness: Probe = Probe(period_s=10.0, timeout_s=5.0, failure_threshold=5, initial_delay_s=15)
    termination_grace_s: float = Field(10.0, ge=0)
    lb_port: int | None = Field(
        None,
        ge=1024,
        le=65535,
        description="HAProxy's port on 127.0.0.1 (the UI/API URL); unset: a free port",
    )
    startup_timeout_s: float = Field(180.0, gt=0)
    clock_skew_replicas: tuple[str, ...] = Field(
        (),
        description="replicas that may get clock_skew faults (e.g. scheduler-0): they run "
        "with their wall clock behind an offset the fault sets (libfaketime on the local "
        "platform), zero until then",
    )
    network: Literal["loopback", "pod"] = Field(
        DEFAULT_NETWORK,
        description="local platform: 'pod' runs every replica in its own network namespace "
        "with its own address on a private bridge (like pods on a node; the harness is a "
        "client host on it) and allows the network faults partition/latency/loss/bandwidth; "
        "needs root (without it the cluster falls back to 'loopback' and refuses network "
        "faults). 'loopback': every replica on 127.0.0.1, no network faults",
    )
    postgres_disk_mb: int | None = Field(
        None,
        ge=64,
        le=65536,
        description="PostgreSQL's data directory on a filesystem of this size (MiB), which "
        "disk_fill faults fill up; unset: no size limit",
    )

    @field_validator("airflow_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"\d+\.\d+\.\d+([a-z]+\d+)?", v):
            raise ValueError(f"airflow_version {v!r} is not a release like '3.3.2'")
        return v

    @field_validator("airflow_config", mode="before")
    @classmethod
    def _config(cls, v: Any) -> dict[str, str]:
        if not isinstance(v, dict):
            raise ValueError("airflow_config must be a mapping of 'section.key' to value")
        out = {}
        for key, value in v.items():
            if not _CONFIG_KEY.match(str(key)):
                raise ValueError(f"airflow_config key {key!r} must look like 'section.key'")
            out[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
        return out

    @field_validator("replica_airflow_config", mode="before")
    @classmethod
    def _replica_config(cls, v: Any) -> dict[str, dict[str, str]]:
        if not isinstance(v, dict):
            raise ValueError("replica_airflow_config must map a replica to its overrides")
        return {str(r): cls._config(c) for r, c in v.items()}

    @model_validator(mode="after")
    def _skewable(self) -> Topology:
        for name in self.clock_skew_replicas:
            component, _, index = name.rpartition("-")
            if component not in COMPONENTS or not index.isdigit():
                raise ValueError(f"clock_skew_replicas: {name!r} is not a replica name like "
                                 "'scheduler-0' (services cannot be skewed)")  # fmt: skip
            if int(index) >= self.replicas(component):
                raise ValueError(f"clock_skew_replicas: {name!r}: there are only "
                                 f"{self.replicas(component)} {component} replica(s)")  # fmt: skip
        return self

    def replicas(self, component: str) -> int:
        """How many replicas of ``component`` (one of :data:`COMPONENTS`)."""
        return {
            "api-server": self.api_servers,
            "scheduler": self.schedulers,
            "dag-processor": self.dag_processors,
            "triggerer": self.triggerers,
            "worker": self.workers,
        }[component]

    def with_overrides(self, **changes: Any) -> Topology:
        """A validated copy with ``changes`` applied (dotted Airflow config merged)."""
        data = self.model_dump()
        if "airflow_config" in changes:
            data["airflow_config"] = {**data["airflow_config"], **changes.pop("airflow_config")}
        data.update(changes)
        return validate_topology(data, source="overrides")

    def airflow_env(self, replica: str | None = None) -> dict[str, str]:
        """The config overrides as ``AIRFLOW__SECTION__KEY`` environment variables (with
        ``replica``'s own on top)."""
        config = {**self.airflow_config, **self.replica_airflow_config.get(replica or "", {})}
        return {
            f"AIRFLOW__{k.split('.')[0].upper()}__{k.split('.')[1].upper()}": v
            for k, v in config.items()
        }


def validate_topology(data: Any, *, source: str) -> Topology:
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "topology"
        raise HarnessError(
            f"invalid topology {source}: {where}: {first['msg']}",
            fix="correct that field (see `ha-bench up --help` and README 'Topology')",
        ) from None


def load_topology(path: Path | str | None) -> Topology:
    """The default topology, or one read from a YAML file."""
    if path is None:
        return Topology()
    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"topology file {p} not found", fix="pass an existing YAML file")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise HarnessError(
            f"topology file {p} is not valid YAML" + (f" (line {line + 1})" if line else ""),
            fix="fix the YAML syntax",
        ) from None
    return validate_topology(data, source=str(p))
