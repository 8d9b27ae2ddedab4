"""Replica log lines as ``log`` events: timestamps of each format, kinds, tracebacks.

The lines are recorded: copied verbatim from the replicas' logs of the runs under
``results/`` (worker-0.log of 20261201T124233Z-9344, postgres.log and scheduler-0.log of
20261201T112204Z-c3da, redis.log), apart from the Celery, PostgreSQL connection-loss and
Kubernetes-prefixed lines, which are synthesized in those tools' documented formats.
"""

from __future__ import annotations

from datetime import UTC, datetime

from harness.core.history import LOG_KINDS, HistoryWriter, read_history
from harness.observe import replica_logs
from harness.observe.replica_logs import classify, log_events, parse

HEARTBEAT = (
    "2026-12-01T12:43:24.393557Z [warning  ] Failed to send heartbeat. Will be retried "
    "[supervisor] failed_heartbeats=1 loc=supervisor.py:1742 max_retries=3 "
    "ti_id=UUID('01a231a1-8337-7ad7-bbf0-815079e211b0')"
)
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/root/.cache/airflow-ha-bench/airflow/3.3.2/lib/python3.11/site-packages/airflow/'
    'sdk/execution_time/supervisor.py", line 1712, in _send_heartbeat_if_needed',
    "    self.client.task_instances.heartbeat(self.id, pid=self._process.pid)",
    "airflow.sdk.api.client.ServerResponseError: Invalid auth token",
    "Correlation-id=01a231a1-9b63-74a4-8ce3-12adb3097cc3",
]
API_ERROR = (
    "2026-12-01T12:43:24.431049Z [error    ] API server error               [supervisor] "
    "detail={'detail': 'Invalid auth token'} loc=supervisor.py:936 message='Invalid auth "
    "token' status_code=403"
)
RETRY = (
    "2026-12-01T12:48:50.795667Z [warning  ] Starting call to 'airflow.sdk.api.client.Client"
    ".request', this is the 1st time calling it. [airflow.sdk.api.client] loc=before.py:36"
)
VISIBILITY = (
    "2026-12-01T11:22:14.422806Z [warning  ] No visibility_timeout configured in "
    "[celery_broker_transport_options]. Using default of 86400 seconds (24 hours)."
)
INFO = (
    "2026-12-01T11:22:16.788755Z [info     ] Starting log server on http://[::]:37573 "
    "[airflow.utils.serve_logs.core] loc=core.py:50"
)
PG_DISK = ('2026-12-01 11:50:51.793 UTC [10999] ERROR:  could not extend file '
           '"base/16384/16434": No space left on device')  # fmt: skip
PG_START = '2026-12-01 12:42:33.947 UTC [11789] LOG:  listening on IPv4 address "127.0.0.1"'
PG_CLIENT_GONE = ("2026-12-01 12:50:02.100 UTC [12001] LOG:  could not receive data from "
                  "client: Connection reset by peer")  # fmt: skip
REDIS = "11788:C 01 Dec 2026 12:42:33.930 # Redis version=7.0.15, bits=64, commit=00000000"
CELERY = ("[2026-12-01 12:50:03,250: ERROR/MainProcess] consumer: Cannot connect to "
          "redis://10.213.7.3:6379/0: Error 111 connecting to 10.213.7.3:6379.")  # fmt: skip
K8S = "2026-12-01T12:50:04.000000001Z " + API_ERROR
HAPROXY = ("[WARNING]  (13081) : Server api_servers/api-server-0 is DOWN, reason: Layer4 "
           "connection problem")  # fmt: skip


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_each_timestamp_format_is_read_as_utc():
    assert parse(HEARTBEAT).t_wall == _utc("2026-12-01T12:43:24.393557")
    assert parse(HEARTBEAT).level == "warning"
    assert parse(PG_DISK).t_wall == _utc("2026-12-01T11:50:51.793") and parse(PG_DISK).postgres
    assert parse(PG_DISK).level == "error"
    assert (
        parse(REDIS).t_wall == _utc("2026-12-01T12:42:33.930") and parse(REDIS).level == "warning"
    )
    assert (
        parse(CELERY).t_wall == _utc("2026-12-01T12:50:03.250") and parse(CELERY).level == "error"
    )
    k8s = parse(K8S)  # the kubelet's prefix: the container's own stamp and level win
    assert k8s.t_wall == _utc("2026-12-01T12:43:24.431049") and k8s.level == "error"
    assert parse(TRACEBACK[0]) is None and parse(HAPROXY) is None


def test_lines_are_sorted_into_the_kinds_that_matter_and_noise_is_left_out():
    kinds = {text: classify(parse(text)) for text in
             (HEARTBEAT, API_ERROR, RETRY, PG_DISK, PG_CLIENT_GONE, CELERY, VISIBILITY, INFO,
              PG_START)}  # fmt: skip
    assert kinds == {HEARTBEAT: "heartbeat", API_ERROR: "execution_api", RETRY: "execution_api",
                     PG_DISK: "db", PG_CLIENT_GONE: "db", CELERY: "broker",
                     VISIBILITY: None, INFO: None, PG_START: None}  # fmt: skip
    assert set(kinds.values()) - {None} <= set(LOG_KINDS)


def test_a_traceback_gives_its_exception_as_the_cause_and_the_window_is_kept():
    lines = [INFO, HEARTBEAT, *TRACEBACK, API_ERROR, RETRY]
    since = _utc("2026-12-01T12:00:00")
    events, counts = log_events("worker-0", lines, since, until_wall=_utc("2026-12-01T12:45:00"))
    assert [e["kind"] for e in events] == ["heartbeat", "execution_api"]  # RETRY is after
    assert events[0]["cause"] == "airflow.sdk.api.client.ServerResponseError: Invalid auth token"
    assert "cause" not in events[1]
    assert counts == {"heartbeat": 1, "execution_api": 1}
    later, _ = log_events("worker-0", lines, _utc("2026-12-01T12:44:00"))
    assert [e["line"] for e in later] == [RETRY]


def test_events_are_capped_per_kind_but_counted_whole(monkeypatch):
    monkeypatch.setattr(replica_logs, "MAX_EVENTS_PER_KIND", 2)
    events, counts = log_events("postgres", [PG_DISK] * 5, 0.0)
    assert len(events) == 2 and counts == {"db": 5}


def test_record_writes_log_events_and_the_counts_marker(tmp_path):
    writer = HistoryWriter(tmp_path, "replica-logs")
    since = _utc("2026-12-01T11:00:00")
    totals = replica_logs.record(writer, [("worker-0", [HEARTBEAT, *TRACEBACK]),
                                          ("postgres", [PG_START, PG_DISK]),
                                          ("haproxy", [HAPROXY])], since)  # fmt: skip
    writer.close()
    assert totals == {"worker-0": {"heartbeat": 1}, "postgres": {"db": 1}}
    df = read_history(tmp_path)
    logs = df[df["type"] == "log"]
    assert sorted(logs["replica"]) == ["postgres", "worker-0"]
    row = logs[logs["replica"] == "worker-0"].iloc[0]
    assert row["t_wall"] == _utc("2026-12-01T12:43:24.393557")
    assert abs((row["t_wall"] - row["t_mono"]) - (df["t_wall"] - df["t_mono"]).iloc[0]) < 1.0
    marker = df[(df["type"] == "marker") & (df["name"] == "replica_logs")].iloc[0]
    assert marker["detail"]["counts"] == totals
