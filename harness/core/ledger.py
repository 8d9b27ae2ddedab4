"""The side-effect ledger: one JSON row per task execution phase, written by the benchmark DAGs.

Row format (fields may be added, none renamed): ``phase`` (``start`` | ``end``),
``dag_id``, ``run_id``, ``task_id``, ``map_index``, ``try_number``, ``replica`` (the worker
replica that ran it), ``hostname``, ``pid``, ``t_wall`` (unix s) and, on ``end``, the
outcome. Platforms read it (a file, or a pod's file) with :func:`parse_ledger`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)


def parse_ledger(data: bytes, *, source: str = "ledger") -> list[dict[str, Any]]:
    """Ledger rows from raw JSONL bytes; a torn final line (a writer died) is skipped."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(True), 1):
        if not line.endswith("\n"):
            break  # torn final line of a writer that died mid-write
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s:%d: skipping corrupt ledger line", source, number)
    return rows
