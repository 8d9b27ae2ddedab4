"""The CLI's contracts: commands, flags and one-line errors (no cluster is started here)."""

import subprocess
import sys

import pytest

from harness.cli import build_parser, main


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_list_names_experiments_and_parameters():
    out = _run("list")
    assert out.returncode == 0
    for name in ("api-server-kill", "scheduler-kill", "api-server-pause", "dag-processor-kill"):
        assert name in out.stdout
    assert "api_servers=2" in out.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no-such-experiment", "--out", "x"], "unknown experiment"),
        (["run", "api-server-kill", "--set", "nope=1", "--out", "x"], "no parameter 'nope'"),
        (["run", "api-server-kill", "--set", "novalue", "--out", "x"], "KEY=VALUE"),
        (["up", "--topology", "/nonexistent.yaml"], "not found"),
        (["run", "api-server-kill", "--set", "Bad.Key=1", "--out", "x"], "section.key"),
        (
            [
                "run",
                "api-server-kill",
                "--platform",
                "kubernetes",
                "--kube-context",
                "prod",
                "--out",
                "x",
            ],
            "context 'prod' is not allowed",
        ),
    ],
)
def test_bad_input_is_a_one_line_error_with_a_fix(args, expected, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err
    assert "fix:" in err
    assert len(err.splitlines()) == 1


def test_probe_flags_match_the_documented_contract():
    args = build_parser().parse_args(
        ["probe", "--url", "http://127.0.0.1:1/", "--duration", "2", "--interval", "0.1",
         "--timeout", "0.5", "--out", "d"]
    )  # fmt: skip
    assert (args.url, args.duration, args.interval, args.timeout) == (
        "http://127.0.0.1:1/", 2.0, 0.1, 0.5,
    )  # fmt: skip


def test_run_flags_match_the_documented_contract():
    args = build_parser().parse_args(
        ["run", "scheduler-kill", "--api-servers", "1", "--schedulers", "2", "--workers", "1",
         "--repeat", "3", "--set", "load_users=5", "--out", "d"]
    )  # fmt: skip
    assert (args.api_servers, args.schedulers, args.workers, args.repeat) == (1, 2, 1, 3)
    assert args.set == ["load_users=5"]


def test_negative_duration_is_refused():
    out = _run("probe", "--url", "http://127.0.0.1:1/", "--duration", "-1", "--out", "d")
    assert out.returncode == 2
    assert "must be > 0" in out.stderr


def test_kind_without_the_kind_binary_names_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither kind nor docker
    assert main(["kind", "up"]) == 2
    err = capsys.readouterr().err.strip()
    assert "kind not found" in err and "fix:" in err and "--platform local" in err


def test_a_refused_context_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "scheduler-kill", "--platform", "kubernetes", "--kube-context",
                 "prod-eu", "--out", str(out)]) == 2  # fmt: skip
    assert not out.exists()
    assert "--allow-context prod-eu" in capsys.readouterr().err


def test_a_repetition_line_names_each_figure_once():
    from harness.cli.experiments import _repetition_line

    figures = {"repetition": 1, "downtime_s": 6.9, "faults_injected": 28, "failed_tasks": 1}
    line = _repetition_line(figures, ("downtime_s", "faults_injected", "failed_tasks"))
    assert line.count("failed_tasks") == 1 and "faults_injected 28" in line
