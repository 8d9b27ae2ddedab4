"""faults.ops.inject with the resource, clock and disk faults, on a recording nemesis: each
is called with its fault's arguments, held, and always undone — also when the fault
failed or the hold was interrupted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.core.errors import HarnessError
from harness.faults.ops import UNDO, arguments, inject
from harness.run.model import Fault


class Recorder:
    """A nemesis that records each call; ``fail`` names an op that raises."""

    def __init__(self, fail: str | None = None, missing: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple] = []
        self.fail = fail
        self.missing = missing

    def __getattr__(self, op: str):
        if op.startswith("_") or op in self.missing:
            raise AttributeError(op)

        def call(target: str, **kwargs):
            self.calls.append((op, target, kwargs))
            if op == self.fail:
                raise HarnessError(f"{op} failed")
            return {"op": op, "phase": "ok"}

        return call


class FakeCluster:
    platform = "fake"

    def __init__(self, nemesis: Recorder) -> None:
        self.nemesis = nemesis

    def replica_names(self, component=None):
        return ["scheduler-0", "scheduler-1"]


CASES = [
    (Fault(op="cpu_throttle", target="scheduler-0", cores=0.05), {"cores": 0.05}),
    (Fault(op="memory_limit", target="worker-0", bytes=2**30, oom_group=True),
     {"limit": 2**30, "oom_group": True}),
    (Fault(op="clock_skew", target="scheduler-0", skew_s=-60), {"seconds": -60}),
    (Fault(op="freeze", target="api-server-0"), {}),
    (Fault(op="disk_fill", target="postgres"), {}),
]  # fmt: skip


@pytest.mark.parametrize(("fault", "kwargs"), CASES, ids=[c[0].op for c in CASES])
def test_each_op_gets_its_arguments_and_its_undo(fault, kwargs):
    nemesis = Recorder()
    inject(fault, FakeCluster(nemesis))
    assert nemesis.calls == [(fault.op, fault.target, kwargs), (UNDO[fault.op], fault.target, {})]
    assert arguments(fault) == kwargs


@pytest.mark.parametrize("op", ["freeze", "cpu_throttle", "clock_skew"])
def test_the_undo_runs_when_the_fault_fails_or_the_hold_is_interrupted(op, monkeypatch):
    fault = Fault(op=op, target="scheduler-0", cores=0.5, skew_s=60, hold_s=30)
    nemesis = Recorder(fail=op)
    with pytest.raises(HarnessError):
        inject(fault, FakeCluster(nemesis))
    assert [c[0] for c in nemesis.calls] == [op, UNDO[op]]

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("harness.faults.ops.time.sleep", interrupted)
    nemesis = Recorder()
    with pytest.raises(KeyboardInterrupt):
        inject(fault, FakeCluster(nemesis))
    assert [c[0] for c in nemesis.calls] == [op, UNDO[op]]


def test_every_target_of_all_is_undone():
    nemesis = Recorder()
    inject(Fault(op="clock_skew", target="scheduler/all", skew_s=600), FakeCluster(nemesis))
    assert [(c[0], c[1]) for c in nemesis.calls] == [
        ("clock_skew", "scheduler-0"), ("clock_reset", "scheduler-0"),
        ("clock_skew", "scheduler-1"), ("clock_reset", "scheduler-1"),
    ]  # fmt: skip


def test_a_platform_without_the_op_refuses_before_touching_anything():
    nemesis = Recorder(missing=("freeze", "thaw"))
    with pytest.raises(HarnessError, match="cannot inject freeze"):
        inject(Fault(op="freeze", target="api-server-0"), FakeCluster(nemesis))
    assert nemesis.calls == []


@pytest.mark.parametrize(("op", "field"), [("cpu_throttle", "cores"),
                                           ("memory_limit", "bytes"),
                                           ("clock_skew", "skew_s")])  # fmt: skip
def test_a_fault_without_its_argument_is_refused(op, field):
    with pytest.raises(ValidationError, match=f"{op} needs {field}"):
        Fault(op=op, target="scheduler-0")
    with pytest.raises(ValidationError):
        Fault(op="cpu_throttle", target="scheduler-0", cores=0)
