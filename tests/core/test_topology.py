"""Topology: defaults, YAML loading, and one-line errors that name the fix."""

import pytest

from harness.core.errors import HarnessError
from harness.core.topology import Topology, load_topology


def test_default_is_the_reference_ha_cluster():
    t = Topology()
    assert (t.api_servers, t.schedulers, t.dag_processors, t.triggerers, t.workers) == (
        2, 2, 1, 1, 2,
    )  # fmt: skip
    assert t.airflow_version == "3.3.2"


def test_yaml_with_config_overrides(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "api_servers: 1\nairflow_config:\n"
        "  scheduler.task_instance_heartbeat_timeout: 60\n  core.parallelism: 8\n"
    )
    t = load_topology(path)
    assert t.api_servers == 1
    assert t.airflow_env() == {
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        "AIRFLOW__CORE__PARALLELISM": "8",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("api_servers: 0\n", "api_servers"),
        ("schedulers: two\n", "schedulers"),
        ("bogus: 1\n", "bogus"),
        ("airflow_version: latest\n", "airflow_version"),
        ("airflow_config:\n  nodot: 1\n", "section.key"),
        ("api_servers: [\n", "not valid YAML"),
    ],
)
def test_invalid_topology_is_one_line_naming_the_field(tmp_path, text, message):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError) as err:
        load_topology(path)
    assert message in str(err.value)
    assert "fix:" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file():
    with pytest.raises(HarnessError, match="not found"):
        load_topology("/nonexistent/topology.yaml")


def test_with_overrides_merges_config():
    t = Topology(airflow_config={"core.parallelism": "8"})
    t2 = t.with_overrides(api_servers=1, airflow_config={"scheduler.x_y": "1"})
    assert t2.api_servers == 1
    assert t2.airflow_config == {"core.parallelism": "8", "scheduler.x_y": "1"}


def test_one_replica_can_be_configured_apart():
    from harness.core.topology import Topology

    t = Topology(replica_airflow_config={"api-server-1": {"api_auth.jwt_secret": "other"}},
                 airflow_config={"core.parallelism": "8"})  # fmt: skip
    assert t.airflow_env("api-server-1") == {"AIRFLOW__CORE__PARALLELISM": "8",
                                             "AIRFLOW__API_AUTH__JWT_SECRET": "other"}  # fmt: skip
    assert t.airflow_env("api-server-0") == {"AIRFLOW__CORE__PARALLELISM": "8"}
    with pytest.raises(ValueError, match=r"section\.key"):
        Topology(replica_airflow_config={"api-server-1": {"nodot": "x"}})
