"""Airflow as the system under test: one cached environment per version, like an image."""

from __future__ import annotations

import subprocess

import pytest

from harness.core.errors import HarnessError
from harness.core.topology import DEFAULT_AIRFLOW_VERSION
from harness.platform.airflow_env import AirflowEnv, ensure_airflow, env_path, is_installed


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


def test_packages_of_the_installed_environment_are_its_pip_freeze_sorted_and_cached():
    env = ensure_airflow(DEFAULT_AIRFLOW_VERSION)
    packages = env.packages()
    assert f"apache-airflow=={DEFAULT_AIRFLOW_VERSION}" in packages
    assert packages == sorted(packages) and all("==" in p or " @ " in p for p in packages)
    assert any(p.startswith("pip==") for p in packages)  # --all: pip itself too
    packages.append("mutated")  # a copy: the cache is not changed through it
    same = AirflowEnv(env.version, env.prefix)  # another instance of the same environment
    assert same.packages() == packages[:-1]


def test_packages_of_a_broken_environment_is_a_harness_error(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to("/bin/false")
    with pytest.raises(HarnessError, match=r"pip freeze` failed .* fix: remove"):
        AirflowEnv("0.0.0", tmp_path).packages()
