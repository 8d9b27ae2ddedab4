"""Link windows and what crossed them, on synthesized histories (event rows of the shapes
a pod-network run records: the nemesis's fault operations, probes, Locust requests, task
states and replica ``log`` events)."""

from __future__ import annotations

import json

from histories import ev, probes

from harness.analysis.links import AFTER_HEAL_S, link_effects, link_label, link_windows
from harness.core.history import events_frame


def _partition(t: float, op_id: int, target: str = "worker-0", **fields):
    fields = {"peers": ["api-server-0", "api-server-1"], "both_ways": True,
              "mode": "blackhole", **fields}  # fmt: skip
    return [ev(t, "fault", op="partition", target=target, phase="invoke", op_id=op_id,
               **fields),
            ev(t + 0.01, "fault", op="partition", target=target, phase="ok", op_id=op_id,
               detail={"faults": [{"id": "f1"}]})]  # fmt: skip


def _heal(t: float, op_id: int, target: str = "worker-0"):
    return [
        ev(t, "fault", op="heal", target=target, phase="invoke", op_id=op_id),
        ev(t + 0.02, "fault", op="heal", target=target, phase="ok", op_id=op_id),
    ]


def _log(t: float, replica: str, kind: str, line: str = "x", **fields):
    return ev(t, "log", source="replica-logs", replica=replica, kind=kind, level="warning",
              line=line, **fields)  # fmt: skip


def _history(*extra):
    return events_frame([*probes(0.0, 60.0, down=((20.0, 22.0),)), *extra,
                         ev(60.0, "marker", name="replica_logs", detail={})])  # fmt: skip


def test_a_partition_window_runs_from_its_ok_to_the_heal_of_the_same_target():
    df = _history(*_partition(20.0, 1), *_heal(35.0, 2, target="worker-1"), *_heal(40.0, 3))
    (w,) = link_windows(df)
    assert (w["start"], w["end"], w["healed"]) == (20.01, 40.02, True)
    assert w["mode"] == "blackhole" and w["peers"] == ["api-server-0", "api-server-1"]
    assert link_label(w) == "worker-0 ↔ api-server-0, api-server-1"
    assert link_label({**w, "both_ways": False}) == "worker-0 → api-server-0, api-server-1"


def test_a_fault_that_failed_has_no_window_and_one_never_healed_runs_to_the_end():
    failed = [
        ev(
            10.0,
            "fault",
            op="latency",
            target="postgres",
            phase="invoke",
            op_id=7,
            peers=["scheduler-0"],
            delay_ms=200.0,
        ),
        ev(10.1, "fault", op="latency", target="postgres", phase="fail", op_id=7),
    ]
    df = _history(*failed, *_partition(20.0, 1))
    (w,) = link_windows(df)
    assert w["op"] == "partition" and w["healed"] is False and w["end"] == df["t_mono"].max()


def test_what_crossed_the_link_is_counted_inside_the_window_and_shortly_after_the_heal():
    logs = [
        _log(15.0, "worker-0", "heartbeat"),  # before the cut: not counted
        _log(
            25.0,
            "worker-0",
            "heartbeat",
            line="Failed to send heartbeat",
            cause="httpx.ConnectTimeout: timed out",
        ),
        _log(26.0, "worker-0", "execution_api"),
        _log(27.0, "worker-0", "heartbeat"),
        _log(40.0 + AFTER_HEAL_S - 1, "api-server-0", "error"),  # just after the heal
        _log(40.0 + AFTER_HEAL_S + 1, "worker-0", "heartbeat"),  # too late
    ]
    tasks = [
        ev(30.0, "workload", event="task_state", state="failed", run_id="r", task_id="a"),
        ev(31.0, "workload", event="task_state", state="success", run_id="r2"),
    ]
    requests = [ev(21.0, "request", source="locust", name="/api/v2/dags", ok=False,
                   status=0, latency_s=1.0),
                ev(30.0, "request", source="locust", name="/api/v2/dags", ok=True,
                   status=200, latency_s=0.2)]  # fmt: skip
    df = _history(*_partition(20.0, 1), *_heal(40.0, 2), *logs, *tasks, *requests)
    (e,) = link_effects(df)
    assert e["link"] == "worker-0 ↔ api-server-0, api-server-1"
    assert (e["at_s"], e["held_s"], e["healed"]) == (0.01, 20.01, True)
    assert e["params"] == {"mode": "blackhole", "both_ways": True}
    assert e["logs"]["counts"] == {"heartbeat": 2, "execution_api": 1, "error": 1}
    assert e["logs"]["by_replica"] == {"worker-0": {"heartbeat": 2, "execution_api": 1},
                                       "api-server-0": {"error": 1}}  # fmt: skip
    first = next(s for s in e["logs"]["samples"] if s["kind"] == "heartbeat")
    assert first == {"at_s": 5.0, "replica": "worker-0", "kind": "heartbeat",
                     "line": "Failed to send heartbeat",
                     "cause": "httpx.ConnectTimeout: timed out"}  # fmt: skip
    assert e["tasks"] == {"failed": 1}
    assert e["locust"]["sent"] == 2 and e["locust"]["failed"] == 1
    lb = e["probes"]["lb"]  # every 50 ms, down 20-22 s: 20.05-21.95 inside 20.01-40.02
    assert lb["failed"] == 39 and lb["sent"] == 400 and lb["p99_s"] == 0.005


def test_logs_never_read_are_unknown_not_zero():
    rows = [*probes(0.0, 30.0), *_partition(10.0, 1), *_heal(20.0, 2)]
    (e,) = link_effects(events_frame(rows))
    assert e["logs"] is None
    (read,) = link_effects(_history(*_partition(10.0, 1), *_heal(20.0, 2)))
    assert read["logs"] == {"counts": {}, "by_replica": {}, "samples": []}


def test_no_network_fault_no_links():
    assert link_effects(_history()) == [] and link_windows(events_frame([])) == []


def test_the_recovery_curve_shades_each_link_window_and_names_the_link():
    from harness.analysis.curves import recovery_curve
    from harness.report.plots.recovery import recovery_curve_figure

    df = _history(*_partition(20.0, 1), *_heal(40.0, 2))
    curve = recovery_curve(df)
    (link,) = curve.links
    assert link[0] == "worker-0 ↔ api-server-0, api-server-1"
    assert (round(link[1], 3), round(link[2], 3)) == (0.01, 20.02)  # seconds since the fault
    fig = recovery_curve_figure(curve)
    rate = fig.axes[0]
    texts = [t.get_text() for t in rate.texts]
    labels = [t.get_text() for t in rate.get_legend().get_texts()]
    assert link[0] in texts and "link cut or slowed" in labels
    assert "link cut or slowed" not in [
        t.get_text() for t in recovery_curve_figure(recovery_curve(_history())).axes[0]
        .get_legend().get_texts()]  # fmt: skip


def test_peers_stored_as_json_text_still_name_the_link():
    """``history.parquet`` keeps nested values as JSON text; the link still names them."""
    df = _history(*_partition(20.0, 1), *_heal(40.0, 2))
    df["peers"] = df["peers"].map(lambda v: json.dumps(v) if isinstance(v, list) else v)
    (w,) = link_windows(df)
    assert link_label(w) == "worker-0 ↔ api-server-0, api-server-1"
