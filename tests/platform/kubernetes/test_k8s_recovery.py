"""A kill → replacement ready sequence (a synthetic watch stream of real shapes) gives the
right recovery time through the same analysis a local run uses (exact, from the receipt
times)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from test_k8s_fakes import load, replay

from harness.analysis import outages as analysis


def timeline(name: str) -> list[dict[str, Any]]:
    """The fixture's fault events plus the lifecycle events the tracker derives, with ``t``."""
    _, events = replay(load(name), harness=True)
    return [e if e.get("type") == "fault" else {"type": "lifecycle", **e} for e in events]


def test_analysis_finds_the_replacement_ready_from_watch_events():
    """As recorded by a run (``t_mono``): ``analysis.recovery`` finds the replacement ready
    through the lifecycle events the tracker derives from the pod watch."""
    history = [
        {("t_mono" if k == "t" else k): v for k, v in e.items()}
        for e in timeline("kill-api-server.json")
    ]
    df = pd.DataFrame(history)
    df["t_wall"] = df["t_mono"] + 1.7e9
    rec = analysis.recovery(df, 110.0, target="lb", replica="api-server-0")
    # killed at 110.0; the replacement's init container, then Ready at 123.58
    assert round(rec["replacement_ready_s"], 6) == 13.58
