"""Recovery curves: one repetition over time (:func:`recovery_curve_figure`), and one LB
column of several curves on one axis (:func:`overlay_figure`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.analysis.curves import LB, RecoveryCurve
from harness.report.plots.style import RC, legend_right, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OUTCOME_COLOURS = {
    "http_error": "#d62728",
    "refused": "#ff7f0e",
    "reset": "#9467bd",
    "timeout": "#8c564b",
    "other": "#7f7f7f",
}
# state -> (marker, colour, vertical offset inside the replica's row, legend label)
STATE_STYLE = {
    "killed": ("X", "#d62728", 0.36, "killed / fault"),
    "exited": ("x", "#000000", 0.24, "exited"),
    "not_ready": ("v", "#ff7f0e", 0.12, "not ready"),
    "restarting": ("o", "#9467bd", 0.0, "restarting"),
    "starting": (">", "#7f7f7f", -0.12, "starting"),
    "ready": ("^", "#2ca02c", -0.36, "ready"),
    "out_of_lb": ("s", "#aec7e8", -0.24, "out of LB"),
    "in_lb": ("s", "#1f77b4", -0.24, "back in LB (in_lb)"),
    "endpoint_added": ("s", "#1f77b4", -0.24, "back in the Service (endpoint_added)"),
    "stopped": ("D", "#000000", 0.0, "stopped"),
}
MARKS = {  # key moment -> (colour, line style, legend label)
    "fault": ("#d62728", "-", "fault"),
    "replacement_ready": ("#2ca02c", "--", "replacement ready"),
    "back_in_lb": ("#1f77b4", "--", "back in LB"),
    "recovered": ("#000000", ":", "recovered (sustained)"),
}
SUCCESS_CMAP = LinearSegmentedColormap.from_list("success", ["#b2182b", "#fddbc7", "#1a9850"])


def _steps(t: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop points of a post-step series that repeat the previous values (same drawing)."""
    if len(t) < 3:
        return (t, *ys)
    same = np.ones(len(t), dtype=bool)
    for y in ys:
        prev, cur = y[:-1], y[1:]
        same[1:] &= (prev == cur) | (np.isnan(prev) & np.isnan(cur))
    same[0] = same[-1] = False
    keep = ~same
    return (t[keep], *(y[keep] for y in ys))


LINK_COLOUR = "#9467bd"


def _marks(ax, curve: RecoveryCurve) -> None:
    for _, start, end in curve.links:  # a network fault's window: from its rules to the heal
        ax.axvspan(start, end, color=LINK_COLOUR, alpha=0.07, linewidth=0, zorder=0)
    for key, (colour, style, _) in MARKS.items():
        t = curve.marks.get(key)
        if t is not None:
            ax.axvline(t, color=colour, linestyle=style, linewidth=1.3, zorder=5)


def recovery_curve_figure(curve: RecoveryCurve, *, title: str = "") -> Figure:
    """Four panels on one time axis (seconds since the fault), with fault markers on all.

    1. LB probes: success rate and error rate by outcome per bin (%), LB outages shaded;
    2. latency p50/p95/p99 through the LB and p95 per replica (ms, log scale);
    3. success rate per probed target (colour strip; grey: no probes in the bin);
    4. lifecycle events per replica (killed, exited, restarting, ready, in_lb ...).
    """
    import matplotlib

    replicas = list(dict.fromkeys(curve.events["replica"])) if len(curve.events) else []
    targets = list(curve.streams)
    heights = [2.2, 1.9, 0.32 * max(len(targets), 1) + 0.35, 0.6 * max(len(replicas), 1) + 0.3]
    with matplotlib.rc_context(RC):
        fig = new_figure(12.5, sum(heights) + 0.9)
        axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": heights})
        ax_rate, ax_lat, ax_strip, ax_life = axes
        _rate_panel(ax_rate, curve)
        _latency_panel(ax_lat, curve, targets)
        _target_panel(fig, ax_strip, curve, targets)
        _lifecycle_panel(ax_life, curve, replicas)
        for ax in axes:
            ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        if title:
            fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    return fig


def _rate_panel(ax_rate: Axes, curve: RecoveryCurve) -> None:
    """1. success / error rate through the LB, outages shaded, the fault named."""
    lb = curve.lb
    bin_ms = f"{curve.bin_s * 1000:.0f} ms"
    for start, end in curve.outages:
        ax_rate.axvspan(start, end, color="#d62728", alpha=0.12, linewidth=0, zorder=0)
    if len(lb):
        t = lb["t_s"].to_numpy(dtype=float)
        bottom = np.zeros(len(lb))
        for outcome, colour in OUTCOME_COLOURS.items():
            rate = lb[f"error_rate_{outcome}"].fillna(0).to_numpy(dtype=float) * 100
            if rate.any():
                tt, b0, b1 = _steps(t, bottom, bottom + rate)
                ax_rate.fill_between(
                    tt,
                    b0,
                    b1,
                    step="post",
                    color=colour,
                    alpha=0.75,
                    linewidth=0,
                    label=f"error rate: {outcome.replace('_', ' ')}",
                )
                bottom = bottom + rate
        ax_rate.step(
            *_steps(t, lb["success_rate"].to_numpy(dtype=float) * 100),
            where="post",
            color="#006d2c",
            linewidth=1.6,
            zorder=4,
            label="success rate",
        )
    ax_rate.set_ylim(-3, 103)
    ax_rate.set_ylabel(f"LB probes (% per {bin_ms})")
    _marks(ax_rate, curve)
    for i, (link, start, _) in enumerate(curve.links):
        ax_rate.annotate(link, (start, 0.02 + 0.08 * (i % 3)), xycoords=("data", "axes fraction"),
                         xytext=(3, 0), textcoords="offset points", fontsize=7,
                         color=LINK_COLOUR, va="bottom")  # fmt: skip
    if curve.marks.get("fault") is not None and curve.fault_label:
        ax_rate.annotate(
            curve.fault_label,
            (0, 1),
            xycoords=("data", "axes fraction"),
            xytext=(0, 2),
            textcoords="offset points",
            va="bottom",
            ha="center",
            color="#d62728",
            fontsize=8,
            fontweight="bold",
        )
    handles, _ = ax_rate.get_legend_handles_labels()
    if curve.outages:
        handles.append(Patch(color="#d62728", alpha=0.12, label="LB outage"))
    if curve.links:
        handles.append(Patch(color=LINK_COLOUR, alpha=0.2, label="link cut or slowed"))
    handles += [
        Line2D([], [], color=c, linestyle=s, label=lab)
        for key, (c, s, lab) in MARKS.items()
        if curve.marks.get(key) is not None
    ]
    legend_right(ax_rate, handles)


def _latency_panel(ax_lat: Axes, curve: RecoveryCurve, targets: list[str]) -> None:
    """2. latency percentiles through the LB and p95 per replica (log scale)."""
    lb = curve.lb
    if len(lb):
        t = lb["t_s"].to_numpy(dtype=float)
        for col, colour, lab in (
            ("latency_p50_s", "#08519c", "LB p50"),
            ("latency_p95_s", "#ff7f0e", "LB p95"),
            ("latency_p99_s", "#7b3294", "LB p99"),
        ):
            ax_lat.step(
                *_steps(t, lb[col].to_numpy(dtype=float) * 1000),
                where="post",
                color=colour,
                linewidth=1.1,
                label=lab,
            )
    for name in targets:
        if name == LB:
            continue
        s = curve.streams[name]
        ax_lat.step(
            *_steps(
                s["t_s"].to_numpy(dtype=float), s["latency_p95_s"].to_numpy(dtype=float) * 1000
            ),
            where="post",
            linestyle="--",
            linewidth=0.8,
            alpha=0.8,
            label=f"{name} p95",
        )
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency (ms, log)")
    _marks(ax_lat, curve)
    if ax_lat.get_legend_handles_labels()[0]:
        legend_right(ax_lat)


def _target_panel(fig: Figure, ax_strip: Axes, curve: RecoveryCurve, targets: list[str]) -> None:
    """3. success rate per target as colour strips (grey: no probes in the bin)."""
    lo, hi = curve.span
    bin_s = curve.bin_s
    if targets:
        n_bins = round((hi - lo) / bin_s) + 1
        grid = np.full((len(targets), n_bins), np.nan)
        for row, name in enumerate(targets):
            s = curve.streams[name]
            col = np.round((s["t_s"].to_numpy(dtype=float) - lo) / bin_s).astype(int)
            keep = (col >= 0) & (col < n_bins)
            grid[row, col[keep]] = s["success_rate"].to_numpy(dtype=float)[keep]
        cmap = SUCCESS_CMAP.with_extremes(bad="#d9d9d9")
        image = ax_strip.imshow(
            np.ma.masked_invalid(grid),
            aspect="auto",
            cmap=cmap,
            vmin=0,
            vmax=1,
            interpolation="nearest",
            extent=(lo, lo + n_bins * bin_s, len(targets), 0),
        )
        ax_strip.set_yticks(
            np.arange(len(targets)) + 0.5, ["LB" if t == LB else t for t in targets]
        )
        cax = ax_strip.inset_axes((1.01, 0.0, 0.012, 1.0))
        bar = fig.colorbar(image, cax=cax, ticks=[0, 0.5, 1])
        bar.ax.set_yticklabels(["0%", "50%", "100%"])
    ax_strip.set_ylabel("success\nper target", rotation=0, ha="right", va="center")
    _marks(ax_strip, curve)


def _lifecycle_panel(ax_life: Axes, curve: RecoveryCurve, replicas: list[str]) -> None:
    """4. lifecycle events per replica; the shared time axis's label and limits."""
    lo, hi = curve.span
    ev = curve.events[(curve.events["t_s"] >= lo) & (curve.events["t_s"] <= hi)]
    seen: dict[str, Line2D] = {}
    for row, replica in enumerate(replicas):
        ax_life.axhline(row, color="#eeeeee", linewidth=6, zorder=0)
        mine = ev[ev["replica"] == replica]
        for state, group in mine.groupby("state", sort=False):
            marker, colour, dy, lab = STATE_STYLE.get(str(state), ("*", "#17becf", 0, state))
            ax_life.scatter(
                group["t_s"],
                [row - dy] * len(group),
                marker=marker,
                color=colour,
                s=36,
                zorder=6,
                linewidths=1.2,
            )
            seen.setdefault(
                lab, Line2D([], [], marker=marker, color=colour, linestyle="", label=lab)
            )
    ax_life.set_yticks(range(len(replicas)), replicas)
    ax_life.set_ylim(max(len(replicas), 1) - 0.5, -0.5)  # no replica: one empty row
    ax_life.set_ylabel("lifecycle")
    _marks(ax_life, curve)
    order = [v[3] for v in STATE_STYLE.values()]
    handles = sorted(
        seen.values(),
        key=lambda h: order.index(h.get_label()) if h.get_label() in order else len(order),
    )
    if handles:
        legend_right(ax_life, handles, ncols=2 if len(handles) > 4 else 1)
    ax_life.set_xlabel("time since fault (s)")
    ax_life.set_xlim(lo, hi)


def overlay_figure(curves: dict[str, RecoveryCurve], *, column: str = "success_rate") -> Figure:
    """One binned LB column (default success rate, %) of several curves on one time axis."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = new_figure(12.5, 3.6)
        ax = fig.subplots()
        for label, curve in curves.items():
            lb = curve.lb
            scale = 100 if column.endswith("rate") else 1000
            ax.step(
                lb["t_s"].to_numpy(dtype=float),
                lb[column].to_numpy(dtype=float) * scale,
                where="post",
                linewidth=1.2,
                label=label,
            )
        ax.axvline(0, color="#d62728", linewidth=1.3, label="fault")
        unit = "%" if column.endswith("rate") else "ms"
        ax.set_ylabel(f"LB {column.replace('_', ' ')} ({unit})")
        ax.set_xlabel("time since fault (s)")
        ax.grid(color="#dddddd", linewidth=0.6)
        legend_right(ax)
    return fig
