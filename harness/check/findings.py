"""What every checker's findings share: how times and executions read in messages, one
line per finding, and the :class:`~harness.check.executions.CheckResult` a checker returns
(its findings capped at ``MAX_IDS``, their ``count`` kept)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from harness.check.executions import MAX_IDS, CheckResult
from harness.check.history import Execution


def utc(x: float | None) -> str:
    """A wall time in messages: UTC time of day to the millisecond (the finding's fields
    keep the Unix seconds)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return dt.datetime.fromtimestamp(x, dt.UTC).strftime("%H:%M:%S.%f")[:-3]


def proc(e: Execution) -> str:
    """``pid <pid>@<host> (<replica>)``: the process of an execution."""
    where = f"{e.pid}@{e.hostname}" + (f" ({e.replica})" if e.replica else "")
    return f"pid {where}"


def span(e: Execution) -> str:
    """``[start .. last alive <its last word>]`` of an execution."""
    end = "end" if e.end is not None else (e.outcome or "no last word")
    return f"[{utc(e.start)} .. {utc(e.last_alive)} {end}]"


def finding_line(finding: dict[str, Any]) -> str:
    """One line for a finding: its check, kind and message."""
    check = finding.get("check")
    head = f"{check}/{finding.get('kind')}" if check else str(finding.get("kind"))
    return f"{head}: {finding.get('message', '')}"


def result(
    name: str,
    findings: list[dict[str, Any]],
    *,
    invalid: bool,
    unknown: bool = False,
    problems: list[str] | None = None,
    **details: Any,
) -> CheckResult:
    """The checker ``name``'s result: invalid, else unknown, else valid."""
    valid: bool | None = False if invalid else (None if unknown else True)
    return CheckResult(name, valid,
                       {**details, "findings": findings[:MAX_IDS], "count": len(findings)},
                       problems or [])  # fmt: skip
