"""``ha-bench report`` and ``ha-bench runs`` on the recorded smoke run, and the curve data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from reportdata import SMOKE_RUN, VARIANTS, copy_run, synth_run

from harness.analysis.curves import binned, recovery_curve
from harness.cli import main
from harness.core.history import HistoryWriter
from harness.report.report import write_run_report
from harness.report.runs import load_run
from harness.report.tables import measured_median

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the recorded run with its report written by the CLI."""
    run = copy_run(tmp_path_factory.mktemp("report") / "smoke-run-1")
    assert main(["report", str(run)]) == 0
    return run


def test_report_files_and_index(reported: Path):
    figures = reported / "figures"
    for name in VARIANTS:
        for ext in ("png", "svg"):
            assert (figures / f"{name}-rep-1-recovery.{ext}").stat().st_size > 5000
    for stem in ("repetitions", "phase-latency"):
        assert (figures / f"{stem}.png").exists() and (figures / f"{stem}.svg").exists()
    for png in figures.glob("*.png"):
        with Image.open(png) as image:
            assert image.width >= 1000
    index = json.loads((reported / "summary.json").read_text())
    assert sorted(index["experiments"]) == sorted(VARIANTS)
    assert index["experiments"]["api-server-kill-a2-s2-w1"]["downtime_s"] == [
        pytest.approx(0.8626378509989081)
    ]
    size = sum(
        p.stat().st_size
        for p in [*figures.iterdir(), reported / "report.md", reported / "report.html"]
    )
    assert size < 1_000_000, f"report output is {size} bytes; keep it committable"


def test_markdown_has_setup_verdicts_phases_and_plain_single_repetition(reported: Path):
    md = (reported / "report.md").read_text()
    for heading in (
        "## Overview",
        "## Setup",
        "## SLO verdicts",
        "## Latency per phase",
        "## Experiments",
        "### api-server-kill-a2-s2-w1",
        "#### Headline: api-server-kill-a2-s2-w1",
        "#### Repetitions: api-server-kill-a2-s2-w1",
        "#### Recovery curves: api-server-kill-a2-s2-w1",
    ):
        assert heading in md
    assert "no confidence intervals" in md and "(n=1; no 95 % interval: n < 6)" in md
    overview = md.split("## Overview")[1].split("## Setup")[0]
    table = [line for line in overview.splitlines() if line.startswith("| ")]
    # written before experiments named a headline: downtime and recovery of each variant
    assert len(table) == 1 + 2 * len(VARIANTS) and not any("[" in line for line in table[1:])
    assert [line.split("|")[3].strip() for line in table[1:]] == [
        "`downtime_s`", "`recovery_s`"] * len(VARIANTS)  # fmt: skip
    assert "written before experiments named their headline figures" in md
    assert "No baseline recorded" in md and "No Locust load in this experiment" in md
    assert "Scheduling:" not in md  # no headline about scheduling, no scatter
    setup = md.split("## Setup")[1].split("## SLO verdicts")[0]
    for fact in (
        "3.3.2",
        "local",
        "api-servers=2",
        "schedulers=2",
        "none",
        "0.1.0",
        "2 CPUs",
        "Python 3.11.7",
        "exact setup of scheduler-kill-a1-s1-w1",
    ):
        assert fact in setup
    assert "`downtime_s <= 1.0`" in md and "**confirmed**" in md and "**refuted**" in md
    assert "0.863" in md and "| 0.86 s | 48.01 s |" in md  # verdicts; repetitions table
    # each hypothesis's figure over repetitions, with the interval (or why there is none)
    assert "| **confirmed** | 0.863 | 0.86 s (n=1; no 95 % interval: n < 6) |" in md
    assert "![Recovery curve of api-server-kill-a2-s2-w1, repetition 1" in md
    assert "(figures/api-server-kill-a2-s2-w1-rep-1-recovery.png)" in md


def test_html_is_self_contained(reported: Path):
    page = (reported / "report.html").read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) == len(VARIANTS) + 2
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert page.count("data:image/png;base64,") == len(sources)
    assert not re.search(r'(src|href)="(https?:)?//', page), "external resources"
    assert "<script" not in page
    assert 'class="bad"' in page and 'class="ok"' in page  # verdict colours


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs the chromium OS package (scripts/setup.sh)"
)
def test_html_renders_plots_in_headless_chromium(reported: Path, tmp_path: Path):
    shot = tmp_path / "shot.png"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1400,3000",
        (reported / "report.html").resolve().as_uri(),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert shot.exists(), out.stderr[-2000:]
    with Image.open(shot) as image:
        rgb = np.asarray(image.convert("RGB"))
    assert rgb.shape[:2] == (3000, 1400)
    colours = len(np.unique(rgb.reshape(-1, 3), axis=0))
    not_white = float((rgb.min(axis=2) < 245).mean())
    assert colours > 150, f"only {colours} distinct colours: plots did not render"
    assert not_white > 0.05, f"{not_white:.1%} of the page is not white"
    # the repetitions figure (first image) is drawn: a band of rows rich in colour
    rich_rows = [len(np.unique(row, axis=0)) > 20 for row in rgb[::10]]
    assert sum(rich_rows) > 20


def test_single_experiment_directory(tmp_path: Path):
    exp = copy_run(tmp_path / "exp", SMOKE_RUN / "scheduler-kill-a2-s2-w1")
    summary = (exp / "summary.json").read_text()
    report = write_run_report(exp)
    assert report == exp / "report.md"
    assert (exp / "summary.json").read_text() == summary  # its contract, not an index
    md = report.read_text()
    assert "experiment `exp`" in md and "scheduler-kill" in md
    assert (exp / "figures" / "exp-rep-1-recovery.png").exists()


def test_repetitions_without_history_and_intervals(tmp_path: Path):
    run = synth_run(tmp_path / "synth", reps=6)  # 6: the fewest with a 95 % interval
    md = write_run_report(run).read_text()
    assert "no event history" in md
    assert re.search(r"\d+\.\d\d s \[\d+\.\d\d, \d+\.\d\d\] \(n=6\)", md)
    assert "no confidence intervals" not in md
    assert (run / "figures" / "repetitions.png").exists()


def test_a_report_again_without_histories_keeps_the_curves_and_drops_stale_figures(
    tmp_path: Path,
):
    exp = copy_run(tmp_path / "exp", SMOKE_RUN / "scheduler-kill-a2-s2-w1")
    write_run_report(exp)
    curve = exp / "figures" / "exp-rep-1-recovery.png"
    drawn = curve.read_bytes()
    stale = exp / "figures" / "gone-rep-1-recovery.svg"
    stale.write_text("<svg/>")
    for path in (exp / "rep-1").glob("history*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    md = write_run_report(exp).read_text()
    assert "the curve is kept from an earlier report" in md
    assert "(figures/exp-rep-1-recovery.png)" in md and curve.read_bytes() == drawn
    assert not stale.exists()


def test_history_from_jsonl_and_no_results(tmp_path: Path):
    exp = tmp_path / "exp"
    rep = exp / "rep-1"
    with HistoryWriter(rep, "probe") as w:
        for i in range(40):
            ok = not 10 <= i < 20
            w.append(
                "probe",
                t=(1000.0 + i * 0.1, 10.0 + i * 0.1),
                target="lb",
                endpoint="/v",
                ok=ok,
                outcome="ok" if ok else "refused",
                latency_s=0.01 if ok else None,
            )
        w.append("fault", t=(1000.9, 10.9), op="kill", target="a-0", phase="invoke")
        w.append("lifecycle", t=(1002.5, 12.5), replica="a-0", state="ready")
    summary = json.loads((SMOKE_RUN / VARIANTS[0] / "summary.json").read_text())
    summary["repetitions"] = [dict(summary["repetitions"][0], repetition=1)]
    (exp / "summary.json").write_text(json.dumps(summary))
    assert "Recovery curve of exp, repetition 1" in write_run_report(exp).read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "No experiment finished" in write_run_report(empty).read_text()
    assert main(["report", str(empty)]) == 2


def test_binned_rates_and_latency():
    obs = pd.DataFrame(
        {
            "t_mono": [10.0, 10.1, 10.2, 10.3, 10.9],
            "ok": [True, False, True, True, True],
            "outcome": ["ok", "timeout", "ok", "ok", "ok"],
            "latency_s": [0.1, np.nan, 0.3, 0.2, 0.5],
        }
    )
    b = binned(obs, t0=10.0, bin_s=0.25)
    assert list(b["t_s"]) == [0.0, 0.25, 0.5, 0.75]
    assert list(b["count"]) == [3, 1, 0, 1]
    assert b.loc[0, "success_rate"] == pytest.approx(2 / 3)
    assert b.loc[0, "error_rate_timeout"] == pytest.approx(1 / 3)
    assert b.loc[0, "latency_p50_s"] == pytest.approx(0.2)
    assert np.isnan(b.loc[2, "success_rate"])


def test_recovery_curve_of_the_recorded_run_matches_its_figures():
    run = load_run(SMOKE_RUN)
    rep = run.variant("api-server-kill-a2-s2-w1").repetitions[0]
    curve = recovery_curve(rep.history(), figures=rep.figures)
    assert list(curve.streams) == ["lb", "api-server-0", "api-server-1"]
    assert len(curve.outages) == len(rep.figures["outages"])
    total = sum(end - start for start, end in curve.outages)
    assert total == pytest.approx(rep.figures["downtime_s"], abs=1e-6)
    assert curve.marks["replacement_ready"] == pytest.approx(
        rep.figures["replacement_ready_s"], abs=1e-6
    )
    assert curve.marks["recovered"] == pytest.approx(rep.figures["recovery_s"])
    assert curve.fault_label == "kill api-server-0"
    states = set(curve.events["state"])
    assert {"killed", "restarting", "ready", "in_lb"} <= states
    # the killed replica's own probe stream is down for most of the ~46 s restart
    down = curve.streams["api-server-0"]
    assert down[(down["t_s"] > 1) & (down["t_s"] < 44)]["success_rate"].max() == 0.0


def test_runs_lists_newest_first_with_headline_figures(tmp_path: Path, capsys):
    results = tmp_path / "results"
    copy_run(results / "older")
    newer = copy_run(results / "newer")
    for path in newer.glob("*/summary.json"):
        summary = json.loads(path.read_text())
        for r in summary["repetitions"]:
            r["fault"] = [dict(f, t_wall=f["t_wall"] + 86400) for f in r["fault"]]
        path.write_text(json.dumps(summary))
    (results / "not-a-run").mkdir()
    assert main(["runs", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert out.index("newer") < out.index("older")
    assert "not-a-run" not in out
    assert "api-server-kill-a2-s2-w1  n=1  downtime median 0.863s  recovery median 48.012s" in out
    assert "verdicts: 11 confirmed, 1 refuted, 1 unknown" in out
    shutil.rmtree(results)
    assert main(["runs", "--results", str(results)]) == 2


def test_hypothesis_medians_only_for_numbers_with_their_unit():
    assert measured_median("downtime_s <= 1.0", [1.0, 3.0, None, 2.0]) == (
        "2.00 s (n=3; no 95 % interval: n < 6)"
    )
    six = [1.0, 3.0, None, 2.0, 4.0, 6.0, 5.0]
    assert measured_median("downtime_s <= 1.0", six) == "3.50 s [1.00, 6.00] (n=6)"
    assert measured_median("scheduling_resumed_vs_restart >= 0.8", [1.2]) == (
        "1.20 (n=1; no 95 % interval: n < 6)"
    )
    assert measured_median("recovered == True", [True, True]) == "-"
    assert measured_median("executions", [[], ["1 lost run"]]) == "-"
    assert measured_median("downtime_s <= 1.0", [None, None]) == "-"
    assert measured_median("downtime_s <= 1.0", None) == "-"


def test_text_from_the_data_is_escaped_in_html_and_in_markdown_tables(tmp_path: Path):
    exp = copy_run(tmp_path / "exp", SMOKE_RUN / "scheduler-kill-a2-s2-w1")
    summary = json.loads((exp / "summary.json").read_text())
    summary["experiment_definition"]["description"] = "kill <script>x</script> & `a<b`"
    summary["verdicts"]["executions"]["why"] = "lost | duplicated"
    (exp / "summary.json").write_text(json.dumps(summary))
    md = write_run_report(exp).read_text()
    assert "kill <script>x</script> & `a<b`" in md and "| lost \\| duplicated |" in md
    page = (exp / "report.html").read_text()
    assert "<script" not in page
    assert "<p>kill &lt;script&gt;x&lt;/script&gt; &amp; <code>a&lt;b</code></p>" in page
    assert "&lt;script&gt;x" in page.split("<pre>")[1]  # the exact setup, escaped too


def test_a_summary_of_a_newer_schema_is_refused_with_the_fix(tmp_path: Path, capsys):
    run = copy_run(tmp_path / "run")
    path = run / VARIANTS[0] / "summary.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), schema_version=99)))
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "schema_version 99 is newer than this harness reads" in err and "fix:" in err
    assert not (run / "report.md").exists()
