"""A pod delete → replacement ready sequence (synthetic watch events) gives the right
recovery time through the same analysis a local run uses (exact, from the receipt times)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from test_k8s_fakes import load

from harness.analysis import outages as analysis
from harness.platform.kubernetes.events import LifecycleTracker


def timeline(name: str, tracker: LifecycleTracker | None = None) -> list[dict[str, Any]]:
    """The fixture's fault events plus the lifecycle events the tracker derives, with ``t``."""
    tracker = tracker or LifecycleTracker()
    out: list[dict[str, Any]] = []
    for e in load(name)["events"]:
        if e["watch"] == "harness":
            out.append({k: v for k, v in e.items() if k != "watch"})
            continue
        feed = tracker.pod_event if e["watch"] == "pods" else tracker.slice_event
        out += [{"t": e["t"], "type": "lifecycle", **ev} for ev in feed(e["type"], e["object"])]
    return out


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
    assert round(rec["replacement_ready_s"], 6) == 9.517
