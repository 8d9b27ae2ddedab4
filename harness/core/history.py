"""One timestamped event history per run, written incrementally.

Every producer (prober, Locust process, supervisor, nemesis, workload driver) appends
JSON lines to its own file ``<run_dir>/history/<source>.jsonl`` and flushes each line,
so a crash or Ctrl-C loses at most the line being written. :func:`read_history` merges
the files into one stream ordered by the monotonic clock; :func:`finalize` also writes
``history.parquet``.

Every event carries:

``t_wall``  Unix time in seconds (for humans and for joining with other tools),
``t_mono``  ``time.monotonic()`` in seconds — CLOCK_MONOTONIC is system-wide on Linux,
            so it orders events across processes and is what durations are computed from,
``source``  the writing file's source name, ``type`` one of :data:`EVENT_TYPES`.

Type-specific fields (all optional beyond the first ones listed):

- ``probe``: ``target`` (``lb``, ``api-server-0`` ...), ``endpoint``, ``url``, ``ok``,
  ``outcome`` (:data:`OUTCOMES`), ``status``, ``latency_s``, ``body`` (parsed JSON of
  ``/api/v2/monitor/health``). ``t_*`` is the *send* time.
- ``request`` (Locust): ``name``, ``method``, ``ok``, ``status``, ``latency_s``,
  ``error``, ``response_length``. ``t_*`` is the request's start time.
- ``fault`` (Jepsen-style operations): ``op`` (``kill``, ``terminate``, ``pause`` ...),
  ``target``, ``phase`` (``invoke`` then ``ok`` | ``fail`` | ``info``), ``op_id``, ``detail``.
- ``lifecycle``: ``replica``, ``component``, ``state`` (:data:`LIFECYCLE_STATES`),
  ``pid``, ``exit_code``, ``incarnation``, ``detail``.
- ``workload``: ``event`` (``trigger``, ``run_state``, ``task_state`` ...), ``dag_id``,
  ``run_id``, ``task_id``, ``state``, ``phase``.
- ``marker``: ``name`` (``warmup_end``, ``baseline_start``, ``run_end`` ...), ``detail``.
- ``log`` (a replica's log line that matters for faults, read after the repetition):
  ``replica``, ``kind`` (:data:`LOG_KINDS`), ``level``, ``line`` (trimmed), ``cause`` (the
  last exception line of a traceback under it). ``t_wall`` is the line's own timestamp;
  ``t_mono`` is derived from it (wall minus the wall-monotonic offset when read).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA_VERSION = 1
HISTORY_DIR = "history"
EVENT_TYPES = ("probe", "request", "fault", "lifecycle", "workload", "marker", "log")
LOG_KINDS = ("heartbeat", "execution_api", "db", "broker", "lb", "error")
OUTCOMES = ("ok", "http_error", "refused", "reset", "timeout", "other")
FAULT_PHASES = ("invoke", "ok", "fail", "info")
LIFECYCLE_STATES = (
    "starting",
    "ready",
    "not_ready",
    "exited",
    "restarting",
    "stopped",
    "in_lb",
    "out_of_lb",
    # the kubernetes platform's pod watch adds these
    "created",
    "scheduled",
    "started",
    "terminating",
    "deleted",
    "endpoint_added",
    "endpoint_removed",
)


def now() -> tuple[float, float]:
    """The current (wall, monotonic) time pair."""
    return time.time(), time.monotonic()


class HistoryWriter:
    """Appends events of one source to ``<run_dir>/history/<source>.jsonl``; thread-safe."""

    def __init__(self, run_dir: Path | str, source: str) -> None:
        self.source = source
        self.path = Path(run_dir) / HISTORY_DIR / f"{source}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        wall, mono = now()
        self._write(
            {
                "type": "header",
                "schema_version": SCHEMA_VERSION,
                "source": source,
                "pid": os.getpid(),
                "t_wall": wall,
                "t_mono": mono,
            }
        )

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str, separators=(",", ":"))
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")

    def append(
        self, type: str, *, t: tuple[float, float] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Record one event; ``t`` is a (wall, mono) pair, default now."""
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}; expected one of {EVENT_TYPES}")
        wall, mono = t if t is not None else now()
        record = {"t_wall": wall, "t_mono": mono, "source": self.source, "type": type, **fields}
        self._write(record)
        return record

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_events(path: Path) -> Iterator[dict[str, Any]]:
    """Events of one history file; skips the header and a torn last line."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # torn final line of a writer that died mid-write
            record = json.loads(line)
            if record.get("type") == "header":
                if record.get("schema_version") != SCHEMA_VERSION:
                    raise ValueError(
                        f"{path}: history schema {record.get('schema_version')} is not "
                        f"{SCHEMA_VERSION}; read it with the harness version that wrote it"
                    )
                continue
            yield record


def history_files(run_dir: Path | str) -> list[Path]:
    return sorted((Path(run_dir) / HISTORY_DIR).glob("*.jsonl"))


def read_history(run_dir: Path | str) -> pd.DataFrame:
    """All events of a run as one DataFrame ordered by ``t_mono`` (ties: file, line order)."""
    rows: list[dict[str, Any]] = []
    for path in history_files(run_dir):
        rows.extend(iter_events(path))
    return events_frame(rows)


def events_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A DataFrame of event dicts ordered by ``t_mono``, stable for ties."""
    columns = ["t_wall", "t_mono", "source", "type"]
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(rows)
    df = df.sort_values("t_mono", kind="stable").reset_index(drop=True)
    return df


def finalize(run_dir: Path | str) -> Path:
    """Write ``history.parquet`` (nested values as JSON text) and return its path."""
    df = read_history(run_dir).copy()
    for column in df.columns:
        if df[column].dtype == object:
            if df[column].map(lambda v: isinstance(v, dict | list)).any():
                df[column] = df[column].map(
                    lambda v: json.dumps(v) if isinstance(v, dict | list) else v
                )
            # mixed object columns (e.g. str and int) cannot be written as one Arrow type
            types = {type(v) for v in df[column].dropna()}
            if len(types) > 1:
                df[column] = df[column].map(lambda v: None if v is None else str(v))
    out = Path(run_dir) / "history.parquet"
    df.to_parquet(out, index=False)
    return out
