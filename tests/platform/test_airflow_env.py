"""Airflow as the system under test: one cached environment per version, like an image."""

from __future__ import annotations

import subprocess

import pytest

from harness.core.errors import HarnessError
from harness.core.topology import DEFAULT_AIRFLOW_VERSION
from harness.platform.airflow_env import ensure_airflow, env_path, is_installed


def test_second_use_of_a_version_installs_nothing():
    assert is_installed(DEFAULT_AIRFLOW_VERSION), "scripts/setup.sh installs the default"
    said: list[str] = []
    env = ensure_airflow(DEFAULT_AIRFLOW_VERSION, log=said.append)
    assert said == []  # an install always says so
    version = subprocess.run(
        [
            str(env.python),
            "-c",
            "import importlib.metadata as m; print(m.version('apache-airflow'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == DEFAULT_AIRFLOW_VERSION
    assert env.airflow.is_file()


def test_an_unknown_version_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HA_BENCH_CACHE", str(tmp_path))
    said: list[str] = []
    with pytest.raises(HarnessError) as err:
        ensure_airflow("0.0.1", log=said.append)  # asks the package index, installs nothing
    assert str(err.value) == (
        "Airflow version 0.0.1 is not available from the package index — fix: choose a "
        "released version (`pip index versions apache-airflow`)"
    )
    assert not env_path("0.0.1").exists() and not is_installed("0.0.1")
