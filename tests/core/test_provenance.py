"""Provenance recorded with results: the machine and the harness source (git)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess

import pytest

from harness.core import provenance
from harness.core.provenance import PACKAGE_DIR, cpu_model, harness_source, machine


def _git_env() -> dict[str, str]:
    """The environment without GIT_* (set when tests run in a git hook, say)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def test_machine_describes_this_host():
    info = machine()
    assert set(info) == {"hostname", "cpus", "python", "system", "kernel_release", "cpu_model"}
    assert info["cpus"] >= 1 and info["python"] == platform.python_version()
    assert info["system"] == platform.system() and info["kernel_release"] == platform.release()
    assert info["cpu_model"] is None or isinstance(info["cpu_model"], str)


def test_cpu_model_is_the_first_model_name_or_none(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n"
        "processor\t: 1\nmodel name\t: other\n"
    )
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")  # e.g. ARM: no model name
    assert cpu_model(cpuinfo) is None
    assert cpu_model(tmp_path / "absent") is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_harness_source_of_this_checkout():
    head = subprocess.run(
        ["git", "-C", str(PACKAGE_DIR), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        env=_git_env(),
    )
    if head.returncode != 0:
        pytest.skip("the harness is not in a git checkout here")
    source = harness_source()
    assert source["git_commit"] == head.stdout.strip() and len(source["git_commit"]) == 40
    assert isinstance(source["git_dirty"], bool)


def test_harness_source_is_none_outside_git_and_without_git(tmp_path, monkeypatch):
    assert harness_source(tmp_path) == {"git_commit": None, "git_dirty": None}
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH: still no exception
    assert harness_source() == {"git_commit": None, "git_dirty": None}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_harness_source_sees_uncommitted_changes(tmp_path):
    env = _git_env()

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(tmp_path), *args], check=True, capture_output=True, env=env
        )

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "a")
    clean = harness_source(tmp_path)
    assert clean["git_commit"] and clean["git_dirty"] is False
    (tmp_path / "a.txt").write_text("changed\n")
    assert provenance.harness_source(tmp_path)["git_dirty"] is True
