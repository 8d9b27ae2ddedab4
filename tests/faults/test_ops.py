"""faults.ops.inject on a real local cluster: a run interrupted while a fault holds (Ctrl-C
in the middle of ``hold_s``) still undoes it — no replica left paused, no service left down."""

from __future__ import annotations

import contextlib
import http.client
import signal
import time
from collections.abc import Iterator

import psutil
import pytest

from harness.faults.ops import inject
from harness.platform.local.cluster import LocalCluster
from harness.run.model import Fault
from harness.run.testing import SMALL

pytestmark = pytest.mark.cluster

HOLD_S = 30.0
INTERRUPT_AFTER_S = 2.0


@contextlib.contextmanager
def interrupted_after(seconds: float) -> Iterator[None]:
    """Raise KeyboardInterrupt in the main thread after ``seconds``, as Ctrl-C would."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _inject_and_interrupt(fault: Fault, cluster: LocalCluster) -> float:
    """Inject ``fault``, interrupted mid-hold; returns how long inject ran."""
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), interrupted_after(INTERRUPT_AFTER_S):
        inject(fault, cluster)
    took = time.monotonic() - started
    assert took < HOLD_S / 2, f"inject ran {took:.1f}s: the interrupt did not end the hold"
    return took


def _statuses(cluster: LocalCluster, name: str) -> dict[int, str]:
    unit = cluster.replica(name).unit
    assert unit is not None
    statuses = {}
    for pid in unit.members():
        with contextlib.suppress(psutil.NoSuchProcess):
            statuses[pid] = psutil.Process(pid).status()
    return statuses


def _answers(host: str, port: int, path: str = "/api/v2/version") -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _fault_phases(events: list[dict], target: str) -> list[tuple[str, str]]:
    return [(e["op"], e["phase"]) for e in events if e["type"] == "fault" and e["target"] == target]


def test_an_interrupted_hold_still_undoes_pause_and_stop_service(cluster_factory):
    cluster = cluster_factory(SMALL)
    events: list[dict] = []
    cluster.bus.subscribe(events.append)

    # pause: SIGSTOP to the api-server, interrupted after 2 of its 30 s
    api = cluster.replica("api-server-0")
    incarnation = api.incarnation
    _inject_and_interrupt(Fault(op="pause", target="api-server-0", hold_s=HOLD_S), cluster)
    statuses = _statuses(cluster, "api-server-0")
    assert statuses and psutil.STATUS_STOPPED not in statuses.values(), statuses
    assert _fault_phases(events, "api-server-0") == [
        ("pause", "invoke"), ("pause", "ok"), ("resume", "invoke"), ("resume", "ok"),
    ]  # fmt: skip
    deadline = time.monotonic() + 30
    while not _answers(cluster.address("api-server-0"), cluster.ports["api-server-0"]):
        assert time.monotonic() < deadline, "the resumed api-server does not answer"
        time.sleep(0.2)
    assert api.incarnation == incarnation  # resumed, not replaced
    assert api.wait_ready(30)

    # stop_service: postgres down for 30 s, interrupted after 2
    postgres = cluster.replica("postgres")
    _inject_and_interrupt(Fault(op="stop_service", target="postgres", hold_s=HOLD_S), cluster)
    assert _fault_phases(events, "postgres") == [
        ("stop_service", "invoke"), ("stop_service", "ok"),
        ("start_service", "invoke"), ("start_service", "ok"),
    ]  # fmt: skip
    assert postgres.wait_ready(60), "postgres was not started again"
    assert postgres.incarnation == 2
    statuses = _statuses(cluster, "postgres")
    assert statuses and psutil.STATUS_STOPPED not in statuses.values(), statuses

    import psycopg

    with psycopg.connect(cluster.dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
