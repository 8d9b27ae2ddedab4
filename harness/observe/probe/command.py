"""``ha-bench probe``: probe any loopback URL open-loop, show progress, write a summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import __version__
from harness.core import history
from harness.core.errors import HarnessError
from harness.core.netguard import is_loopback_host
from harness.observe.probe.prober import (
    ProbeStats,
    ProbeTarget,
    run_probes,
)


def _validate_probe_args(
    url: str, duration_s: float, interval_s: float, timeout_s: float, allow_remote: bool
) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HarnessError(
            f"--url {url!r} is not an http(s) URL",
            fix="give a full URL such as http://127.0.0.1:8080/api/v2/version",
        )
    for name, value in (("--duration", duration_s), ("--interval", interval_s)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise HarnessError(
                f"{name} must be a positive number, got {value!r}", fix=f"pass {name} > 0"
            )
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise HarnessError(f"--timeout must be > 0, got {timeout_s!r}", fix="pass --timeout > 0")
    if not allow_remote and not is_loopback_host(parts.hostname, resolve=True):
        raise HarnessError(
            f"refusing to probe non-loopback host {parts.hostname!r}",
            fix="pass --allow-remote if you own that server",
        )
    base = f"{parts.scheme}://{parts.netloc}"
    endpoint = parts.path or "/"
    if parts.query:
        endpoint += "?" + parts.query
    return base, endpoint


def probe_command(
    url: str,
    duration_s: float,
    interval_s: float,
    timeout_s: float,
    out_dir: Path,
    allow_remote: bool = False,
) -> dict[str, Any]:
    """Probe ``url`` open-loop for ``duration_s``; write history + ``summary.json`` to ``out_dir``.

    Raises :class:`HarnessError` for bad input or (unless ``allow_remote``) a host that is not
    loopback — before anything is sent. Returns the summary (also written to
    ``out_dir/summary.json``): ``downtime_s``, ``outages`` [{start, end, duration_s}] and extras.
    """
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from harness.analysis import outages as analysis

    base, endpoint = _validate_probe_args(url, duration_s, interval_s, timeout_s, allow_remote)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = ProbeTarget("url", base, (endpoint,))

    progress = {"sent": 0, "failures": 0, "last_send": -math.inf, "up": None}
    started = time.monotonic()

    def on_result(event: dict[str, Any]) -> None:
        progress["sent"] += 1
        if not event["ok"]:
            progress["failures"] += 1
        if event["t_mono"] >= progress["last_send"]:
            progress["last_send"] = event["t_mono"]
            progress["up"] = bool(event["ok"])

    def render() -> Text:
        elapsed = min(time.monotonic() - started, duration_s)
        state = progress["up"]
        line = Text(f"{elapsed:6.1f}/{duration_s:g}s  ")
        line.append(f"probes {progress['sent']}  failures {progress['failures']}  ")
        if state is None:
            line.append("state ?", style="dim")
        elif state:
            line.append("state up", style="bold green")
        else:
            line.append("state DOWN", style="bold red")
        return line

    console = Console(stderr=True)
    console.print(
        f"probing {url} every {interval_s:g}s for {duration_s:g}s (timeout {timeout_s:g}s)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    with history.HistoryWriter(out_dir, "prober") as writer:
        writer.append(
            "marker",
            name="probe_start",
            detail={"url": url, "interval_s": interval_s, "timeout_s": timeout_s},
        )

        async def go() -> ProbeStats:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGINT, stop.set)
            try:
                return await run_probes(
                    [target],
                    writer,
                    duration_s=duration_s,
                    interval_s=interval_s,
                    timeout_s=timeout_s,
                    stop=stop,
                    on_result=on_result,
                )
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signal.SIGINT)

        with Live(console=console, get_renderable=render, refresh_per_second=4, transient=False):
            stats = asyncio.run(go())
        writer.append("marker", name="probe_end", detail=stats.to_dict())
    history.finalize(out_dir)

    df = history.read_history(out_dir)
    summary = analysis.summarize_probes(df, run_end_mono=stats.schedule_end_mono)
    summary.update(
        url=url,
        interval_s=interval_s,
        timeout_s=timeout_s,
        duration_s=duration_s,
        planned_probes=stats.planned,
        sent_probes=stats.sent,
        missed_ticks=stats.missed_ticks,
        overload_probes=stats.overload,
        achieved_rate_hz=stats.achieved_rate_hz,
        planned_rate_hz=stats.planned_rate_hz,
        achieved_fraction=stats.achieved_fraction,
        schedule_lag_p99_s=stats.lag_p99_s,
        stopped_early=stats.stopped_early,
        started=stats.started_wall,
        ended=stats.started_wall + (stats.ended_mono - stats.started_mono),
        schema_version=history.SCHEMA_VERSION,
        harness_version=__version__,
    )
    (out_dir / "summary.json").write_text(
        json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return summary
