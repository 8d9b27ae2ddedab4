"""The catalogue of experiment files: parameters, expressions, validation, the schema."""

import itertools
import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.core.errors import HarnessError
from harness.run.catalogue import build, catalogue, json_schema, suite_cases, validate_file


def test_catalogue_parameters_are_coerced_and_validated():
    exp = build("api-server-pause", {"hold_s": "2.5", "api_servers": "2"})
    assert exp.fault.hold_s == 2.5
    assert exp.topology["api_servers"] == 2
    with pytest.raises(HarnessError, match="all_replicas"):
        build("api-server-kill", {"all_replicas": "maybe"})
    for name in catalogue():
        assert build(name).name == name


def test_worker_experiments_state_their_config_overrides():
    exp = build("worker-kill", {"retries": "1", "heartbeat_timeout_s": "20"})
    config = exp.topology["airflow_config"]
    assert config["scheduler.task_instance_heartbeat_timeout"] == "20"
    assert config["core.default_task_retries"] == "1"
    assert exp.fault.target == "worker/victim" and exp.victim_dag == "ha_bench_long"
    assert {h.metric for h in exp.hypotheses} >= {"victim_rerun_after_s", "victim_succeeded"}
    assert build("worker-terminate").fault.grace_s == 60.0


def test_dotted_parameters_are_airflow_config_overrides():
    exp = build("redis-restart", {"scheduler.scheduler_heartbeat_sec": "2", "hold_s": "5"})
    config = exp.topology["airflow_config"]
    assert config["scheduler.scheduler_heartbeat_sec"] == "2"
    assert config["scheduler.task_queued_timeout"] == "60"  # the experiment's own stays
    assert exp.fault.hold_s == 5.0
    with pytest.raises(HarnessError, match=r"section\.key"):
        build("scheduler-kill", {"Not.Valid": "1"})


SHIPPED = sorted(catalogue().values(), key=lambda s: s.name)
PAUSE = next(s for s in SHIPPED if s.name == "api-server-pause").source


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda s: s.name)
def test_every_shipped_experiment_validates_and_is_listed(spec, capsys):
    assert validate_file(Path(spec.source)) == []
    assert main(["validate", spec.source]) == 0
    assert main(["list"]) == 0
    assert f"{spec.name}: {spec.summary}" in capsys.readouterr().out


def _copy(tmp_path, edit) -> Path:
    data = yaml.safe_load(Path(PAUSE).read_text())
    edit(data)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(colour="red"), "colour: Extra inputs are not permitted"),
        (lambda d: d.update(warmup_s="fast"), "warmup_s: Input should be a valid number"),
        (lambda d: d["fault"].update(opp="kill"), "fault.opp: Extra inputs"),
        (lambda d: d["hypotheses"][0].update(op="=<"), "hypotheses.0.op: Input should be"),
        (lambda d: d.update(load_users="{{ hold_s * 1.55 }}"), "load_users: Input should be"),
        (lambda d: d["fault"].update(hold_s="{{ hold }}"), "unknown name(s) hold"),
        (lambda d: d.pop("description"), "description: Field required"),
    ],
    ids=["unknown-top-level", "wrong-type", "unknown-nested", "bad-op", "expression-type",
         "unknown-name", "missing"],
)  # fmt: skip
def test_a_broken_file_fails_validation_naming_the_field(tmp_path, capsys, edit, field):
    path = _copy(tmp_path, edit)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert field in err, err
    with pytest.raises(HarnessError, match="fix: "):
        build(str(path))


def test_a_users_file_builds_with_parameters_and_dotted_overrides(tmp_path):
    path = _copy(tmp_path, lambda d: d.update(name="my-pause"))
    exp = build(str(path), {"hold_s": "3", "api_servers": 3, "core.parallelism": "8"})
    assert exp.name == "my-pause" and exp.fault.hold_s == 3.0
    assert exp.topology["api_servers"] == 3
    assert exp.topology["airflow_config"] == {"core.parallelism": "8"}


def test_when_items_and_vars_follow_the_parameters():
    one = build("api-server-kill", {"api_servers": 1})
    two = build("api-server-kill", {"api_servers": 2})
    assert [h.label for h in one.hypotheses] == ["downtime_s > 0.0", "failed_tasks <= 0"]
    assert [h.gate for h in one.hypotheses] == [True, False]
    assert [h.label for h in two.hypotheses] == ["downtime_s <= 1.0", "failed_tasks <= 0"]
    assert build("api-server-kill", {"all_replicas": True}).fault.target == "api-server/all"
    retry = build("worker-kill", {"retries": 1, "heartbeat_timeout_s": 20.0})
    assert retry.victim_timeout_s == 20 + 15 + 5 + 20 + 30  # bound + delay + task + 30
    assert "with 1 retry the task reruns" in retry.hypotheses[2].why


def test_the_schema_describes_the_file_format(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert {"schema_version", "name", "fault", "hypotheses", "params", "cases"} <= set(
        schema["properties"]
    )
    assert schema == json_schema()


def test_suite_cases_cover_the_smoke_profile_and_group_topologies():
    cases = suite_cases()
    ids = [c.id for _, c in cases]
    assert len(ids) == len(set(ids))
    smoke = {c.id for _, c in cases if "smoke" in c.profiles}
    assert smoke == {"api-server-kill-1", "scheduler-kill-1", "api-server-kill-2",
                     "scheduler-kill-2"}  # fmt: skip
    topologies = [json.dumps(build(n, c.params).topology, sort_keys=True) for n, c in cases]
    changes = sum(a != b for a, b in itertools.pairwise(topologies))
    assert changes == len(set(topologies)) - 1  # each topology is one contiguous group


def test_a_soak_is_a_schedule_and_a_trigger_one_condition(tmp_path):
    soak = build("soak", {"minutes": "2", "faults": "kill,stop_service"})
    assert soak.fault is None and soak.schedule.ops == ("kill", "stop_service")
    assert soak.schedule.duration_s == 120.0
    with pytest.raises(HarnessError, match=r"schedule\.ops\.0"):
        build("soak", {"faults": "explode"})
    path = _copy(
        tmp_path,
        lambda d: d.update(
            trigger={"ledger": {"phase": "start"}, "log": {"replica": "x", "pattern": "y"}}
        ),
    )
    with pytest.raises(HarnessError, match="exactly one of ledger, log, task_state"):
        build(str(path))
    path = _copy(tmp_path, lambda d: d.pop("fault"))
    with pytest.raises(HarnessError, match="a fault or a schedule"):
        build(str(path))
    ok = _copy(
        tmp_path,
        lambda d: d.update(
            trigger={
                "ledger": {"phase": "start", "dag_id": "ha_bench_long"},
                "delay_s": "{{ hold_s / 10 }}",
            }
        ),
    )
    assert build(str(ok)).trigger.delay_s == 1.0


def test_a_sequence_is_a_schedule_of_steps_in_order(tmp_path):
    repro = build("repro-28941-redis-restored-from-old-snapshot", {"snapshot_age_s": "10"})
    steps = repro.schedule.steps
    assert [(s.op, s.target, s.at_s) for s in steps] == [("snapshot", "redis", 12.0),
                                                         ("kill", "redis", 22.0)]  # fmt: skip
    assert repro.schedule.ops == () and repro.schedule.duration_s is None
    assert repro.reproduces.issue == "apache/airflow#28941"
    assert repro.topology["workers"] == 1 and repro.topology["worker_concurrency"] == 1

    def with_schedule(schedule):
        return _copy(tmp_path, lambda d: (d.pop("fault"), d.update(schedule=schedule)))

    kill = {"op": "kill", "target": "redis"}
    for bad, message in [
        ({"steps": [{**kill, "at_s": 5}, {**kill, "at_s": 1}]}, "in at_s order"),
        ({"steps": [{**kill, "at_s": 1}], "ops": ["kill"], "duration_s": 9}, "not both"),
        ({"steps": [{**kill, "at_s": 1}], "duration_s": 9}, "leave duration_s out"),
        ({"ops": ["kill"]}, "needs duration_s"),
        ({"steps": [{"op": "kill", "at_s": 1}]}, r"schedule\.steps\.0\.target"),
    ]:
        with pytest.raises(HarnessError, match=message):
            build(str(with_schedule(bad)))
    ok = with_schedule({"steps": [{**kill, "at_s": "{{ hold_s * 2 }}"}]})
    assert build(str(ok)).schedule.steps[0].at_s == 20.0


def test_params_say_the_replica_counts_the_experiment_runs_with():
    repro = build("repro-28941-redis-restored-from-old-snapshot")
    assert repro.params["workers"] == repro.topology["workers"] == 1  # the file's own
    assert build("api-server-kill", {"api_servers": 1}).params["api_servers"] == 1
