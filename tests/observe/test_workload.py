"""WorkloadDriver against a scripted fake Airflow API on 127.0.0.1."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonserver import JsonHandler, serving

from harness.core.errors import HarnessError
from harness.core.history import HistoryWriter, read_history
from harness.core.ledger import parse_ledger
from harness.observe.workload.driver import WorkloadDriver, arrival_gaps


class FakeAirflow:
    """Runs go queued → running → success as they are polled; triggers are scripted."""

    def __init__(self, slow_trigger: int = 2, bad_trigger: int = 3, error_trigger: int = 4):
        self.lock = threading.Lock()
        self.patches = 0
        self.triggers = 0
        self.polls: dict[str, int] = {}
        self.script = {slow_trigger: "slow", bad_trigger: "bad", error_trigger: "error"}
        self.release = threading.Event()

    def state(self, run_id: str) -> str:
        n = self.polls[run_id]
        return "queued" if n < 2 else "running" if n < 4 else "success"

    def tis(self, run_id: str) -> list[dict[str, Any]]:
        state = self.state(run_id)
        if state == "queued":
            return []
        first = "running" if state == "running" else "success"
        second = None if state == "running" else "success"
        return [
            {"task_id": "step_1", "map_index": -1, "try_number": 1, "state": first,
             "hostname": "worker-1", "dag_run_id": run_id},
            {"task_id": "step_2", "map_index": -1, "try_number": 1 if second else 0,
             "state": second, "hostname": "worker-2" if second else None, "dag_run_id": run_id},
        ]  # fmt: skip


def make_handler(fake: FakeAirflow) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def do_PATCH(self) -> None:
            assert self.body() == {"is_paused": False}
            with fake.lock:
                fake.patches += 1
                first = fake.patches == 1
            if first:  # not parsed yet
                self.reply(404, {"detail": "Dag not found"})
            else:
                self.reply(200, {"dag_id": self.path.rsplit("/", 1)[-1], "is_paused": False})

        def do_POST(self) -> None:
            body = self.body()
            assert body["logical_date"] is None and body["conf"] == {"sleep_s": 0}
            run_id = body["dag_run_id"]
            with fake.lock:
                fake.triggers += 1
                action = fake.script.get(fake.triggers)
                if action in (None, "slow", "exists"):
                    fake.polls[run_id] = 0
            if action == "exists":  # as Airflow answers a dag_run_id that exists
                self.reply(409, {"detail": {"reason": "Unique constraint violation"}})
            elif action == "bad":
                self.reply(400, {"detail": "bad conf"})
            elif action == "error":
                self.reply(503, {"detail": "unavailable"})
            else:
                if action == "slow":
                    fake.release.wait(5)  # longer than the client's timeout
                self.reply(200, {"dag_run_id": run_id, "state": "queued"})

        def do_GET(self) -> None:
            parts = self.route.split("/")  # ['', 'api', 'v2', 'dags', id, 'dagRuns', run, ...]
            run_id = parts[6] if len(parts) > 6 else ""
            with fake.lock:
                if run_id not in fake.polls:
                    self.reply(404, {"detail": "not found"})
                    return
                if len(parts) == 7:
                    fake.polls[run_id] += 1
                    self.reply(200, {"dag_run_id": run_id, "state": fake.state(run_id)})
                else:
                    tis = fake.tis(run_id)
                    self.reply(200, {"task_instances": tis, "total_entries": len(tis)})

    return Handler


@pytest.fixture
def fake_api() -> Iterator[tuple[FakeAirflow, str]]:
    fake = FakeAirflow()
    with serving(make_handler(fake)) as url:
        try:
            yield fake, url
        finally:
            fake.release.set()  # before the shutdown joins a handler waiting on it


def _workload(run_dir: Path) -> list[dict[str, Any]]:
    df = read_history(run_dir)
    return [
        {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}
        for row in df[df["type"] == "workload"].to_dict("records")
    ]


def test_driver_records_triggers_and_states(tmp_path: Path, fake_api) -> None:
    fake, url = fake_api
    writer = HistoryWriter(tmp_path, "workload")
    driver = WorkloadDriver(
        url, writer, trigger_interval_s=0.1, poll_interval_s=0.05, conf={"sleep_s": 0},
        timeout_s=0.5, connect_timeout_s=0.5, max_triggers=5,
    )  # fmt: skip
    assert driver.start(unpause_timeout_s=10) is True
    deadline = time.monotonic() + 20
    while fake.triggers < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver.drain(timeout_s=15) is True
    driver.stop()
    writer.close()

    events = _workload(tmp_path)
    unpause = [e for e in events if e["event"] == "unpause"]
    assert [e["phase"] for e in unpause] == ["ok"] and fake.patches == 2

    triggers = [e for e in events if e["event"] == "trigger"]
    by_run: dict[str, list[str]] = {}
    for e in triggers:
        by_run.setdefault(e["run_id"], []).append(e["phase"])
    assert len(by_run) == 5
    outcomes = [phases for phases in by_run.values()]
    assert all(p[0] == "invoke" and len(p) == 2 for p in outcomes)
    finals = [p[1] for p in outcomes]
    assert finals == ["ok", "info", "fail", "info", "ok"]
    run_ids = list(by_run)
    fail_event = next(e for e in triggers if e["phase"] == "fail")
    assert fail_event["status"] == 400
    info_events = [e for e in triggers if e["phase"] == "info"]
    assert "Timeout" in info_events[0]["error"] and info_events[1]["status"] == 503

    run_states: dict[str, list[str]] = {}
    for e in events:
        if e["event"] == "run_state":
            run_states.setdefault(e["run_id"], []).append(e["state"])
    # acknowledged runs and the timed-out-but-created run are followed to the end
    for run_id in (run_ids[0], run_ids[1], run_ids[4]):
        assert run_states[run_id] == ["queued", "running", "success"]
    assert run_ids[2] not in run_states and run_ids[3] not in run_states

    tasks = [e for e in events if e["event"] == "task_state" and e["run_id"] == run_ids[0]]
    assert [(e["task_id"], e.get("state")) for e in tasks] == [
        ("step_1", "running"), ("step_2", None), ("step_1", "success"), ("step_2", "success"),
    ]  # fmt: skip
    assert tasks[-1]["hostname"] == "worker-2" and tasks[-1]["try_number"] == 1
    drain = [e for e in events if e["event"] == "drain"]
    assert drain[-1]["phase"] == "ok" and drain[-1]["outstanding"] == 0
    assert driver.runs() == {("ha_bench_short", run_ids[0]): "success",
                             ("ha_bench_short", run_ids[4]): "success"}  # fmt: skip


def test_driver_survives_dead_api(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    writer = HistoryWriter(tmp_path, "workload")
    driver = WorkloadDriver(
        f"http://127.0.0.1:{port}", writer, trigger_interval_s=0.1, poll_interval_s=0.05,
        timeout_s=0.3, connect_timeout_s=0.3,
    )  # fmt: skip
    assert driver.start(unpause_timeout_s=0.5) is False
    time.sleep(0.5)
    assert driver.drain(timeout_s=0.5) is True  # nothing was acknowledged
    driver.stop()
    writer.close()
    events = _workload(tmp_path)
    assert any(e["event"] == "unpause" and e["phase"] == "fail" for e in events)
    phases = {e["phase"] for e in events if e["event"] == "trigger"}
    assert phases == {"invoke", "info"}
    assert any(e["event"] == "poll_error" for e in events)
    assert not any(e["event"] == "driver_error" for e in events)


def test_refuses_non_loopback(tmp_path: Path) -> None:
    with HistoryWriter(tmp_path, "workload") as writer, pytest.raises(HarnessError):
        WorkloadDriver("http://192.168.1.10:8080", writer)


def test_parse_ledger_skips_blank_corrupt_and_torn_lines() -> None:
    assert parse_ledger(b"") == []
    data = b'{"phase":"start","task_id":"a"}\n\nnot json\n{"phase":"end","task_id":"a"}\n{"pha'
    assert [r["phase"] for r in parse_ledger(data)] == ["start", "end"]


def _run_driver(url: str, run_dir: Path, fake: FakeAirflow, n: int, **kw: Any) -> WorkloadDriver:
    writer = HistoryWriter(run_dir, "workload")
    kw = {"trigger_interval_s": 0.05, **kw}
    driver = WorkloadDriver(
        url, writer, poll_interval_s=0.05, conf={"sleep_s": 0}, timeout_s=2,
        connect_timeout_s=1, max_triggers=n, **kw,
    )  # fmt: skip
    driver.start(unpause_timeout_s=10)
    deadline = time.monotonic() + 30
    while fake.triggers < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert driver.drain(timeout_s=15) is True
    driver.stop()
    writer.close()
    return driver


def test_a_trigger_answered_409_counts_as_created_and_is_followed(tmp_path: Path) -> None:
    fake = FakeAirflow(slow_trigger=0, bad_trigger=0, error_trigger=0)
    fake.script = {2: "exists"}  # e.g. HAProxy replayed it and the first attempt created it
    with serving(make_handler(fake)) as url:
        driver = _run_driver(url, tmp_path, fake, 3)
    events = _workload(tmp_path)
    finals = [e for e in events if e["event"] == "trigger" and e["phase"] != "invoke"]
    assert [(e["phase"], e["status"], e["existed"]) for e in finals] == [
        ("ok", 200, False), ("ok", 409, True), ("ok", 200, False),
    ]  # fmt: skip
    existed = finals[1]["run_id"]
    states = [e["state"] for e in events if e["event"] == "run_state" and e["run_id"] == existed]
    assert states == ["queued", "running", "success"]
    assert driver.runs()[("ha_bench_short", existed)] == "success"
    assert len(driver.runs()) == 3


def test_arrival_gaps_fixed_and_seeded_poisson(tmp_path: Path) -> None:
    assert list(itertools.islice(arrival_gaps("fixed", 2.0), 3)) == [2.0, 2.0, 2.0]
    first = list(itertools.islice(arrival_gaps("poisson", 0.5, seed=7), 5000))
    again = list(itertools.islice(arrival_gaps("poisson", 0.5, seed=7), 5000))
    other = list(itertools.islice(arrival_gaps("poisson", 0.5, seed=8), 5000))
    assert first == again and first != other  # reproducible from the seed
    assert statistics.fmean(first) == pytest.approx(0.5, rel=0.05)
    assert statistics.stdev(first) == pytest.approx(0.5, rel=0.1)  # exponential: sd = mean
    assert min(first) >= 0
    with pytest.raises(ValueError, match="arrival must be one of"):
        arrival_gaps("burst", 1.0)
    with pytest.raises(ValueError, match="poisson arrivals need"):
        arrival_gaps("poisson", 0.0)
    with HistoryWriter(tmp_path, "workload") as writer, pytest.raises(ValueError):
        WorkloadDriver("http://127.0.0.1:1", writer, arrival="uniform")


def _trigger_gaps(run_dir: Path) -> list[float]:
    invokes = [
        e["t_mono"]
        for e in _workload(run_dir)
        if e["event"] == "trigger" and e["phase"] == "invoke"
    ]
    return [b - a for a, b in itertools.pairwise(invokes)]


@pytest.mark.parametrize("arrival", ["fixed", "poisson"])
def test_triggers_arrive_at_the_drawn_gaps(tmp_path: Path, fake_api, arrival: str) -> None:
    fake, url = fake_api
    fake.script = {}
    n, interval = 12, 0.15
    _run_driver(url, tmp_path, fake, n, trigger_interval_s=interval, arrival=arrival, seed=42)
    expected = list(itertools.islice(arrival_gaps(arrival, interval, seed=42), n - 1))
    observed = _trigger_gaps(tmp_path)
    assert len(observed) == n - 1
    # a gap is the drawn one, or the previous trigger's answer time when that is longer
    for want, got in zip(expected, observed, strict=True):
        assert want - 0.01 <= got <= max(want, 0.02) + 0.1, (expected, observed)
    if arrival == "poisson":
        assert len({round(g, 2) for g in expected}) > 5  # really varies
