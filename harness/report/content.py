"""What a report's templates lay out: its text, tables as rows of cells, and figures with
their paths and embedded data (:class:`Report`, section by section). Text has inline
`code` and **bold** only."""

from __future__ import annotations

from dataclasses import dataclass, field

VERDICTS_NOTE = (
    "A gate is an SLO: refuted fails the run. An expectation is a hypothesis under "
    "study, reported without failing anything. Verdict and measured: as the run recorded "
    "them, one value per repetition; median: over the valid repetitions (censored: +inf), "
    "with the order-statistic 95 % interval of the median (none below 6 repetitions)."
)
PHASES_NOTE = (
    "Probes through the load balancer: before the fault, during (fault until "
    "sustained recovery) and after; medians over the valid repetitions, latency of "
    "successful probes in ms."
)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Figure:
    png: str  # relative to the report's directory
    svg: str
    alt: str  # also the caption
    data_uri: str  # the PNG, for report.html


@dataclass
class Curve:
    """One repetition under "Recovery curves": a note (why its curve is not fresh), a
    figure, or both."""

    note: str | None = None
    figure: Figure | None = None


@dataclass
class Block:
    """A note, a table, or both (a table absent: the note says why)."""

    note: str
    table: Table | None = None


@dataclass
class ExperimentSection:
    name: str
    description: str | None
    headline: Block  # first: the figures that matter for this fault
    baseline: Block
    load: Block
    repetitions: Block  # a table with one row per repetition
    curves: list[Curve]
    timelines: list[Curve] = field(default_factory=list)  # repetitions with a ledger
    scheduling: Curve | None = None  # the scatter, when the headline is about scheduling
    soak: Block | None = None  # a soak's faults in order
    links: Block | None = None  # network faults: what crossed each cut or slowed link
    link_samples: Block | None = None  # the replicas' first lines of each kind across one


@dataclass
class Report:
    """A report's content, as the templates lay it out (section by section)."""

    intro: str
    overview_note: str
    overview: Table
    repetitions_figure: Figure
    setup: Table
    exact_setups: list[tuple[str, str]]  # (experiment, its setup as JSON)
    verdicts: Table
    phases: Table
    phase_figure: Figure
    experiments: list[ExperimentSection]
    verdicts_note: str = VERDICTS_NOTE
    phases_note: str = PHASES_NOTE

    def figures(self) -> list[Figure]:
        curves = [c.figure for e in self.experiments
                  for c in [*([e.scheduling] if e.scheduling else []), *e.curves, *e.timelines]
                  if c.figure]  # fmt: skip
        return [self.repetitions_figure, self.phase_figure, *curves]
