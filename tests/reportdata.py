"""The recorded smoke run shipped with the tests, and runs synthesised from it.

``tests/data/smoke-run-1`` is a real run (4 experiment variants x 1 repetition, Airflow
3.3.2, local platform) with each repetition's ``history.parquet``; the raw
``history/*.jsonl`` and ledgers were dropped to keep it small.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from harness.core import results

DATA = Path(__file__).parent / "data"
SMOKE_RUN = DATA / "smoke-run-1"
VARIANTS = (
    "api-server-kill-a1-s1-w1",
    "api-server-kill-a2-s2-w1",
    "scheduler-kill-a1-s1-w1",
    "scheduler-kill-a2-s2-w1",
)


def copy_run(dst: Path, src: Path = SMOKE_RUN) -> Path:
    """A writable copy of a recorded run."""
    shutil.copytree(src, dst)
    return dst


def synth_run(
    dst: Path,
    *,
    reps: int = 6,
    jitter_s: float = 0.3,
    seed: int = 0,
    src: Path = SMOKE_RUN,
) -> Path:
    """A run of ``reps`` repetitions per variant: the recorded one, its downtime and
    recovery jittered by up to ``jitter_s`` (summaries only; no histories)."""
    rng = random.Random(seed)
    dst.mkdir(parents=True)
    for path in sorted(src.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        first = summary["repetitions"][0]
        repetitions = []
        for i in range(reps):
            r = dict(first, repetition=i + 1, seed=i)
            for key in ("downtime_s", "recovery_s"):
                if r.get(key) is not None:
                    r[key] = max(0.0, r[key] + rng.uniform(-jitter_s, jitter_s))
            repetitions.append(r)
        summary["repetitions"] = repetitions
        write_summary(dst / path.parent.name, summary)
    return dst


def perturb(
    src: Path,
    dst: Path,
    *,
    noise_s: float = 0.0,
    add: dict[str, dict[str, float]] | None = None,
    metadata: dict[str, dict[str, Any]] | None = None,
    seed: int = 1,
) -> Path:
    """A copy of a synthesised run: every figure moved by up to ``noise_s``, plus
    ``add[variant][metric]`` seconds, and ``metadata[variant]`` merged into its metadata."""
    rng = random.Random(seed)
    dst.mkdir(parents=True)
    for path in sorted(src.glob("*/summary.json")):
        name = path.parent.name
        summary = json.loads(path.read_text())
        for r in summary["repetitions"]:
            for key in ("downtime_s", "recovery_s"):
                if r.get(key) is not None:
                    r[key] = max(0.0, r[key] + rng.uniform(-noise_s, noise_s))
                    r[key] += (add or {}).get(name, {}).get(key, 0.0)
        summary["metadata"].update((metadata or {}).get(name, {}))
        write_summary(dst / name, summary)
    return dst


def write_summary(variant_dir: Path, summary: dict[str, Any]) -> None:
    results.write_summary(variant_dir / "summary.json", summary)
