"""The prober in its own process: ``python -m harness.observe.probe.process --config FILE``.

:class:`ProberProcess` starts it in a new session and waits for its ready line; the child
runs :func:`~harness.observe.probe.prober.run_probes` until SIGTERM (or its parent's death),
flushing every probe to ``<run_dir>/history``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core import history
from harness.core.child import spawn_module, stop_child
from harness.observe.probe.prober import (
    DEFAULT_INTERVAL_S,
    DEFAULT_TIMEOUT_S,
    ProbeTarget,
    run_probes,
)


def _config_dict(
    targets: Sequence[ProbeTarget],
    run_dir: Path,
    *,
    source: str,
    duration_s: float | None,
    interval_s: float,
    timeout_s: float,
) -> dict[str, Any]:
    return {
        "run_dir": str(run_dir),
        "source": source,
        "targets": [
            {"name": t.name, "base_url": t.base_url, "endpoints": list(t.endpoints)}
            for t in targets
        ],
        "duration_s": duration_s,
        "interval_s": interval_s,
        "timeout_s": timeout_s,
        "parent_pid": os.getpid(),
    }


class ProberProcess:
    """Runs :func:`run_probes` in its own process (own session) writing ``<run_dir>/history``.

    The child exits 0 after flushing on SIGTERM, and by itself when its parent dies.
    """

    def __init__(
        self,
        targets: Sequence[ProbeTarget],
        run_dir: Path | str,
        *,
        duration_s: float | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        source: str = "prober",
    ) -> None:
        self.targets = list(targets)
        self.run_dir = Path(run_dir)
        self.source = source
        self.duration_s = duration_s
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.config_path = self.run_dir / f"{source}.config.json"
        self.log_path = self.run_dir / f"{source}.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, ready_timeout_s: float = 15.0) -> ProberProcess:
        """Start the child and wait until it is probing."""
        if self.proc is not None:
            raise RuntimeError("prober already started")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = _config_dict(
            self.targets,
            self.run_dir,
            source=self.source,
            duration_s=self.duration_s,
            interval_s=self.interval_s,
            timeout_s=self.timeout_s,
        )
        self.config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        with open(self.log_path, "ab") as log:
            self.proc = spawn_module(
                "harness.observe.probe.process",
                self.config_path,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + ready_timeout_s
        line = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if readable:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if not line.startswith(b"ready"):
            self.stop(timeout_s=2.0)
            raise RuntimeError(f"prober did not start; see {self.log_path}")
        return self

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout_s: float | None = None) -> int:
        if self.proc is None:
            raise RuntimeError("prober not started")
        return self.proc.wait(timeout_s)

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM, wait, then SIGKILL the process group; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        code = stop_child(proc, self.timeout_s + 5.0 if timeout_s is None else timeout_s)
        if proc.stdout is not None:
            proc.stdout.close()
        return code

    def __enter__(self) -> ProberProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _child_main(config: dict[str, Any]) -> int:
    targets = [
        ProbeTarget(t["name"], t["base_url"], tuple(t["endpoints"])) for t in config["targets"]
    ]
    parent_pid = int(config.get("parent_pid") or os.getppid())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def watch_parent() -> None:
        while not stop.is_set():
            if os.getppid() != parent_pid:
                stop.set()
                return
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch_parent())
    with history.HistoryWriter(config["run_dir"], config.get("source", "prober")) as writer:
        writer.append("marker", name="prober_start", detail={"pid": os.getpid(), **config})
        print(f"ready {os.getpid()}", flush=True)
        try:
            stats = await run_probes(
                targets,
                writer,
                duration_s=config.get("duration_s"),
                interval_s=float(config["interval_s"]),
                timeout_s=float(config["timeout_s"]),
                stop=stop,
            )
        finally:
            watcher.cancel()
        writer.append("marker", name="prober_end", detail=stats.to_dict())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The prober child process: ``python -m harness.observe.probe.process --config FILE``."""
    parser = argparse.ArgumentParser(prog="python -m harness.observe.probe.process")
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    return asyncio.run(_child_main(config))


if __name__ == "__main__":
    sys.exit(main())
