"""The nightly resilience workflow: actionlint finds nothing, and it runs what it must (the
smoke experiments on kind, the live-cluster tests, the comparison with the previous night,
the artifact upload and the clean-up)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly-resilience.yml"
EXPERIMENTS_CMD = "pytest experiments/ --platform kubernetes --profile smoke --results results"
KIND_TESTS_CMD = "pytest -m kind tests/"

Step = dict[str, Any]


def actionlint() -> str | None:
    """The actionlint binary: beside this Python (a PyPI wrapper installs it there), or on PATH."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("actionlint", path=path)


def load() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[Step]:
    jobs = load()["jobs"]
    assert list(jobs) == ["resilience"], "one job: the steps share the kind cluster"
    return jobs["resilience"]["steps"]


def index(pred: str) -> int:
    """Position of the one step whose ``run`` contains ``pred``."""
    found = [i for i, s in enumerate(steps()) if pred in s.get("run", "")]
    assert len(found) == 1, f"expected one step running {pred!r}, found {len(found)}"
    return found[0]


def test_actionlint_finds_nothing() -> None:
    binary = actionlint()
    if binary is None:
        pytest.skip("no actionlint binary (install the PyPI package that provides it)")
    out = subprocess.run(
        [binary, "-no-color", "-oneline", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_triggers_and_runner() -> None:
    workflow = load()
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on["schedule"] and all("cron" in s for s in on["schedule"])
    assert "workflow_dispatch" in on
    job = workflow["jobs"]["resilience"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert workflow["permissions"]["actions"] == "read"


def test_setup_steps() -> None:
    uses = {s["uses"].split("@")[0]: s for s in steps() if "uses" in s}
    assert "actions/checkout" in uses
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
    assert "helm/kind-action" in uses
    assert "pip install -e '.[dev]'" in steps()[index("pip install -e")]["run"]


def test_runs_the_experiments_and_the_kind_tests_on_a_kind_cluster() -> None:
    up, experiments, kind_tests = (
        index("ha-bench kind up"),
        index(EXPERIMENTS_CMD),
        index(KIND_TESTS_CMD),
    )
    assert up < experiments < kind_tests
    down = index("ha-bench kind down")
    assert down == len(steps()) - 1
    assert "always()" in steps()[down]["if"]


def test_compares_with_the_previous_night() -> None:
    download, compare = index("gh run download"), index("ha-bench compare")
    assert index(EXPERIMENTS_CMD) < download < compare
    assert "resilience-results" in steps()[download]["run"]
    run = steps()[compare]["run"]
    # exit 1 of `ha-bench compare` (a significant regression) must fail the step
    assert re.search(r"^\s*1\)[^\n]*exit 1", run, re.MULTILINE), run


def test_uploads_the_results_always() -> None:
    uploads = [
        s
        for s in steps()
        if s.get("uses", "").startswith("actions/upload-artifact@")
        and s["with"]["name"] == "resilience-results"
    ]
    assert len(uploads) == 1
    assert uploads[0]["with"]["path"].rstrip("/") == "results"
    assert "always()" in uploads[0]["if"]
    assert steps().index(uploads[0]) < index("ha-bench kind down")
