"""Each variant's headline figures, baseline and load, scheduling scatter, rejoin blips and
a soak's faults in the report.

The runs here are synthesized (``reportdata.synthesized_fault_run``): the recorded smoke
run's summaries as templates, with the keys the runner now writes made up by the builder
(nothing in them was measured)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from reportdata import (
    BASELINE_INVALID,
    SCHEDULER_HEADLINE,
    SOAK_HEADLINE,
    SYNTHESIZED_SCHEDULER,
    SYNTHESIZED_SOAK,
    synthesized_fault_run,
)

from harness.cli import main
from harness.report.plots import scheduling_points, scheduling_scatter_figure
from harness.report.report import write_run_report
from harness.report.runs import load_run

NEVER = (0, 2, 0, 1, 0, 0)  # DAG runs that never started, per valid repetition


def _section(md: str, heading: str) -> str:
    """The text under a ``#### heading`` up to the next heading of any level."""
    text = md.split(f"#### {heading}\n")[1]
    return text.split("\n#")[0].strip()


def _rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` (the header too, not the rule)."""
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ")
    ]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthesized run (a scheduler-kill variant and a soak) with its report written."""
    run = synthesized_fault_run(tmp_path_factory.mktemp("synthesized") / "run", never=NEVER)
    write_run_report(run)
    return run


@pytest.fixture(scope="module")
def md(synthesized: Path) -> str:
    return (synthesized / "report.md").read_text()


def test_a_scheduler_variant_shows_its_headline_first(md: str):
    section = md.split(f"### {SYNTHESIZED_SCHEDULER}\n")[1]
    assert section.index("#### Headline:") < section.index("#### Baseline and load:")
    first_table = _rows(_section(md, f"Headline: {SYNTHESIZED_SCHEDULER}"))
    assert first_table[0][0] == "headline figure"
    assert [row[0] for row in first_table[1:]] == [f"`{m}`" for m in SCHEDULER_HEADLINE]
    latency = first_table[1]
    # 2 of 6 repetitions never saw every run start: the median is measured, the upper
    # bound of its interval is "never"
    assert latency[1].startswith("9.") and "never (>= " in latency[1] and "(n=6)" in latency[1]
    assert latency[2].count("never (>= ") == 2
    overview = md.split("## Overview")[1].split("## Setup")[0]
    mine = [row for row in _rows(overview) if row[0] == SYNTHESIZED_SCHEDULER]
    assert [row[2] for row in mine] == [f"`{m}`" for m in SCHEDULER_HEADLINE]
    assert mine[0][1] == "6 (1 invalid, excluded)"
    soak = [row for row in _rows(overview) if row[0] == SYNTHESIZED_SOAK]
    assert [row[2] for row in soak] == [f"`{m}`" for m in SOAK_HEADLINE]
    assert soak[1][3] == "3.0 (n=1; no 95 % interval: n < 6)"  # a count, not seconds
    repetitions = _rows(_section(md, f"Repetitions: {SYNTHESIZED_SCHEDULER}"))
    assert repetitions[0][3:6] == [f"`{m}`" for m in SCHEDULER_HEADLINE]


def test_the_repetitions_figure_plots_the_headline_figures(synthesized: Path):
    svg = (synthesized / "figures" / "repetitions.svg").read_text()
    for metric in (*SCHEDULER_HEADLINE, *SOAK_HEADLINE):
        assert f">{metric}<" in svg  # a panel per headline figure, titled with its name
    assert ">recovery_s<" not in svg  # neither variant's headline


def test_the_scheduling_scatter_counts_the_runs_that_never_started(synthesized: Path, md: str):
    png = synthesized / "figures" / f"{SYNTHESIZED_SCHEDULER}-scheduling.png"
    assert png.stat().st_size > 5000
    with Image.open(png) as image:
        assert image.width >= 1000
    assert (synthesized / "figures" / f"{SYNTHESIZED_SCHEDULER}-scheduling.svg").exists()
    assert not list((synthesized / "figures").glob(f"{SYNTHESIZED_SOAK}-scheduling.*"))
    variant = load_run(synthesized).variant(SYNTHESIZED_SCHEDULER)
    points = scheduling_points(variant)
    assert points is not None and points.never == sum(NEVER) == 3
    assert [len(r.never) for r in points.repetitions] == list(NEVER)  # rep 7 is left out
    summary = json.loads((synthesized / SYNTHESIZED_SCHEDULER / "summary.json").read_text())
    valid = [r for r in summary["repetitions"] if r["valid"]]
    assert points.runs == sum(len(r["start_latency_points"]) for r in valid)
    fig = scheduling_scatter_figure(points, title=variant.name)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "never started: 3 run(s), drawn at the top edge" in legend
    assert "fault (x = 0)" in legend
    assert "repetition 2: " in legend[1] and legend[1].endswith(", 2 never started")
    ax = fig.axes[0]
    assert "(s relative to the fault)" in ax.get_xlabel() and "(s)" in ax.get_ylabel()
    scheduling = _section(md, f"Scheduling: {SYNTHESIZED_SCHEDULER}")
    assert "**3 never started** while watched" in scheduling
    assert f"]({png.relative_to(synthesized).as_posix()})" in scheduling


def test_the_baseline_table_says_when_the_baseline_had_failures(md: str):
    baseline = _section(md, f"Baseline and load: {SYNTHESIZED_SCHEDULER}")
    assert baseline.startswith("**The baseline had failures**")
    assert "repetition 7: 3 of 160 LB probes failed (1.88 %), invalid and excluded" in baseline
    rows = _rows(baseline)
    assert rows[0][:5] == ["repetition", "baseline window", "LB probes", "failed", "error rate"]
    seventh = next(row for row in rows if row[0] == "7 (invalid, excluded)")
    assert seventh[2:5] == ["160", "3", "1.88 %"]
    assert seventh[5:7] == ["4.0", "21.0"]  # p50, p99 (ms)
    assert seventh[8:] == ["99.7 % (897 of 900)", "0.11 s"]  # the prober's coverage
    assert BASELINE_INVALID in md  # the repetition's own reason, in its row


def test_a_clean_baseline_and_a_prober_short_of_its_rate_are_stated(tmp_path: Path):
    run = synthesized_fault_run(tmp_path / "run", invalid_baseline=None)
    path = run / SYNTHESIZED_SCHEDULER / "summary.json"
    summary = json.loads(path.read_text())
    summary["repetitions"][1]["prober"].update(sent=810, achieved_fraction=0.9)
    path.write_text(json.dumps(summary))
    baseline = _section(write_run_report(run).read_text(),
                        f"Baseline and load: {SYNTHESIZED_SCHEDULER}")  # fmt: skip
    assert baseline.startswith("No LB probe failed in any baseline (960 probes over 6 ")
    assert "**The prober fell short of its planned rate** in repetition 2 (90.0 % sent)" in (
        baseline
    )


def test_the_load_phases_render(synthesized: Path, md: str):
    load = _section(md, f"Baseline and load: {SYNTHESIZED_SCHEDULER}")
    assert "What 10 Locust user(s) saw, over 6 valid repetition(s)" in load
    phases = ("whole run", "before the fault", "during (fault → recovery)", "after recovery")
    rows = {row[0]: row[1:] for row in _rows(load) if row[0] in phases}
    assert list(rows) == list(phases)
    assert rows["before the fault"][:3] == ["1800", "0", "0.00 %"]  # 6 x 300, no failures
    assert rows["during (fault → recovery)"][:3] == ["600", "24", "4.00 %"]
    assert rows["after recovery"][:3] == ["4800", "0", "0.00 %"]
    assert rows["whole run"][:3] == ["7200", "24", "0.33 %"]
    assert all(cell != "-" for row in rows.values() for cell in row)  # p50, p95, p99 in ms
    page = (synthesized / "report.html").read_text()
    assert "<td>during (fault → recovery)</td><td>600</td><td>24</td>" in page
    soak = _section(md, f"Baseline and load: {SYNTHESIZED_SOAK}")
    assert "No baseline recorded" in soak and "No Locust load in this experiment" in soak


def test_the_fault_outage_and_the_rejoin_blips_are_told_apart(md: str):
    rows = _rows(_section(md, f"Repetitions: {SYNTHESIZED_SCHEDULER}"))
    headers = rows[0]
    outage, blips = headers.index("fault's outage"), headers.index("rejoin blips")
    first, second = rows[1], rows[2]
    assert first[0] == "1 (seed 1)" and first[outage] == "0.00 s"
    assert first[blips] == "0.15 s at +11.4 s"  # after the fault's own (empty) outage
    assert second[blips] == "none"


def test_a_soak_lists_its_faults_in_order(md: str):
    rows = _rows(_section(md, f"Faults in order: {SYNTHESIZED_SOAK}"))
    assert rows[0] == ["repetition", "#", "op", "target", "at", "LB outage", "ready after"]
    assert rows[1:] == [
        ["1", "1", "kill", "`api-server-0`", "0.00 s", "0.40 s", "21.30 s"],
        ["1", "2", "kill", "`scheduler-1`", "60.20 s", "0.00 s", "12.80 s"],
        ["1", "3", "stop", "`worker-0`", "120.50 s", "0.00 s", "not seen ready"],
    ]
    assert "Faults in order:" not in md.split(f"### {SYNTHESIZED_SOAK}")[0]


def test_the_index_lists_each_variants_headline(synthesized: Path):
    index = json.loads((synthesized / "summary.json").read_text())["experiments"]
    headline = index[SYNTHESIZED_SCHEDULER]["headline"]
    assert list(headline) == SCHEDULER_HEADLINE
    assert headline["start_latency_after_max_s"].count(None) == 2  # censored: null
    assert list(index[SYNTHESIZED_SOAK]["headline"]) == SOAK_HEADLINE


def test_runs_prints_each_variants_headline(synthesized: Path, capsys: pytest.CaptureFixture):
    assert main(["runs", "--results", str(synthesized.parent)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    scheduler = lines[SYNTHESIZED_SCHEDULER]
    assert "n=6 (1 invalid, excluded)  start_latency_after_max median 9." in scheduler
    assert "s (2 never seen)  task_start_gap_after median " in scheduler  # censored: counted
    assert "  scheduling_resumed median " in scheduler and "downtime" not in scheduler
    soak = lines[SYNTHESIZED_SOAK]
    assert "n=1  downtime median 0.400s  faults_injected median 3  failed_tasks median 0  " in soak
    assert "recovery" not in soak and soak.endswith("verdicts: 2 confirmed, 0 refuted, 1 unknown")


def test_network_faults_get_a_row_per_link_with_what_crossed_it(md: str, synthesized: Path):
    rows = _rows(_section(md, f"Links: {SYNTHESIZED_SOAK}"))
    headers = rows[0]
    assert headers[:8] == ["repetition", "link", "fault", "at", "held", "probes failed/sent",
                           "Locust failed/sent", "tasks failed / retried"]  # fmt: skip
    cut, slow = (dict(zip(headers, r, strict=True)) for r in rows[1:3])
    assert cut["link"] == "`worker-0 ↔ api-server-0, api-server-1`"
    assert (cut["fault"], cut["at"], cut["held"]) == ("partition blackhole", "0.01 s", "20.00 s")
    assert cut["heartbeat"] == "2 (worker-0 2)" and cut["DB"] == "0"
    assert cut["probes failed/sent"] == "lb 0/200 (p99 4.0 ms)"
    assert slow["link"] == "`postgres → scheduler-0`"
    assert slow["fault"] == "latency 200 ms ± 50 ms" and slow["held"].endswith("(never healed)")
    samples = _rows(md.split(f"#### Links: {SYNTHESIZED_SOAK}\n")[1].split("\n#")[0])
    first, second = samples[-2:]  # the evidence table: two heartbeat lines, 5 and 10 s in
    assert (first[0], second[0]) == ("5.00 s", "10.00 s")
    assert first[1:3] == ["`worker-0`", "heartbeat"]
    assert first[4] == "`httpx.ConnectTimeout: timed out`"
    assert f"Links: {SYNTHESIZED_SCHEDULER}" not in md  # no network fault: no section
    assert "Links: " + SYNTHESIZED_SOAK in (synthesized / "report.html").read_text()


def test_a_log_line_with_a_pipe_is_escaped_once_in_the_markdown_row():
    from harness.report.links import _code
    from harness.report.render import _md_row

    assert _md_row([_code("a | b `c`")]) == "| `a \\| b 'c'` |"
