"""An experiment's ``summary.json``: its pydantic models, and writing and reading it.

A summary is written after every repetition and read by everything that comes later
(reports, comparisons, ``ha-bench runs``). :class:`Summary` names what every summary has;
the per-repetition figures and the metadata stay open-ended (``dict``), and keys a newer
writer adds are kept. ``schema_version`` says which layout a file has: this harness reads
versions 1 (the recorded runs written before these models) and 2 (written through them;
the layout is that of version 1), and refuses newer ones, so a file is never misread.

Reading a repetition's figure: :func:`figure` and :func:`censored_for`. A figure whose event
never happened while the harness watched is *censored*: its value is null and the
repetition's ``censored`` maps the metric to the seconds watched. :func:`figure` reads a
censored figure as ``math.inf`` (later than any observed value), so medians and rank tests
treat it as the worst value. Older summaries have no ``censored`` key: every null there is
simply missing.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.core.errors import HarnessError

__all__ = [
    "CENSORED_KEY",
    "READABLE_SCHEMA_VERSIONS",
    "SUMMARY_SCHEMA_VERSION",
    "Summary",
    "Verdict",
    "censored_for",
    "figure",
    "read_summary",
    "write_summary",
]

SUMMARY_SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = range(1, SUMMARY_SCHEMA_VERSION + 1)
RESTORE = "restore summary.json from a copy of the run, or re-run the experiment"
CENSORED_KEY = "censored"  # in a repetition: {metric: seconds watched without the event}


class Verdict(BaseModel):
    """A hypothesis's verdict over all repetitions (``measured``: one entry per repetition).

    ``gate``: an SLO (refuted fails the run) rather than an expectation under study. The
    defaults are what readers have always assumed when a key is missing."""

    model_config = ConfigDict(extra="allow")

    verdict: Literal["confirmed", "refuted", "unknown"]
    why: str = ""
    gate: bool = True
    measured: list[Any] = Field(default_factory=list)


class Summary(BaseModel):
    """One experiment variant's ``summary.json``."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SUMMARY_SCHEMA_VERSION
    experiment: str
    params: dict[str, Any]
    repetitions: list[dict[str, Any]]  # each repetition's figures
    verdicts: dict[str, Verdict]
    experiment_definition: dict[str, Any]
    metadata: dict[str, Any]


def _check_version(version: Any, source: object, harness_version: Any = None) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise HarnessError(
            f"{source}: schema_version {version!r} is not a summary schema version", fix=RESTORE
        )
    if version not in READABLE_SCHEMA_VERSIONS:
        wrote = f" (written by airflow-ha-bench {harness_version})" if harness_version else ""
        raise HarnessError(
            f"{source}: summary schema_version {version} is newer than this harness reads "
            f"({READABLE_SCHEMA_VERSIONS.start}..{READABLE_SCHEMA_VERSIONS.stop - 1}){wrote}",
            fix="read it with the airflow-ha-bench version that wrote it, or upgrade this one",
        )


def _validate(data: Any, source: object) -> Summary:
    try:
        return Summary.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise HarnessError(
            f"{source} is not a valid summary: {where}: {first['msg']}{more}", fix=RESTORE
        ) from None


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read {path}: {exc}", fix=RESTORE) from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path} is not a JSON object", fix=RESTORE)
    return data


def read_summary(path: Path | str) -> Summary:
    """The summary at ``path``; HarnessError if it is unreadable, malformed or of a schema
    version this harness does not read."""
    path = Path(path)
    data = _load_json(path)
    metadata = data.get("metadata")
    harness_version = metadata.get("harness_version") if isinstance(metadata, dict) else None
    _check_version(data.get("schema_version"), path, harness_version)
    return _validate(data, path)


def write_summary(path: Path | str, summary: Summary | dict[str, Any]) -> None:
    """Write ``summary`` to ``path`` atomically (a temporary file, then a rename), so a
    reader never sees half a file. A dict is validated first (HarnessError if it is not a
    summary); one without ``schema_version`` gets :data:`SUMMARY_SCHEMA_VERSION`."""
    path = Path(path)
    model = summary if isinstance(summary, Summary) else _validate(summary, "summary")
    _check_version(model.schema_version, "summary to write")
    text = json.dumps(model.model_dump(), indent=2, default=str) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")  # same dir
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and not math.isnan(value):
        return float(value)
    return None


def _censored(rep: dict[str, Any]) -> dict[str, Any]:
    censored = rep.get(CENSORED_KEY)
    return censored if isinstance(censored, dict) else {}


def figure(rep: dict[str, Any], metric: str) -> float | None:
    """Repetition ``rep``'s figure ``metric``: ``math.inf`` if it is censored (its event was
    not seen while the harness watched), else the number (a bool as 0/1), else None (missing
    or not a number)."""
    if metric in _censored(rep):
        return math.inf
    return _number(rep.get(metric))


def censored_for(rep: dict[str, Any], metric: str) -> float | None:
    """The seconds the harness watched for ``metric``'s event without seeing it (None if the
    figure is not censored, or the time was not recorded)."""
    seconds = _censored(rep).get(metric)
    return None if isinstance(seconds, bool) else _number(seconds)
