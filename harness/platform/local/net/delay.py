"""Latency without netem: an NFQUEUE rule and a small program that holds each packet.

The reference kernel has no ``netem`` qdisc and nftables' ``queue`` expression is missing
too, so a latency fault is an **iptables** rule (the ``iptables-nft`` backend: xt
``NFQUEUE`` through nft's compat layer, which works) in the *source* host's namespace,
``-t mangle -A OUTPUT -d <destinations> -j NFQUEUE --queue-num N --queue-bypass``, and this
program, started in the same namespace, bound to queue N: it holds each packet
``delay ± jitter`` (uniform) and then accepts it. A packet is never released before an
earlier one (release time = max(its own, the previous one's)), so order is kept; jitter
then shows as bursts rather than reordering, and a packet may wait past delay + jitter
behind an earlier one (50 ± 20 ms: 30 connects added 36-92 ms, median 56 ms).
``--queue-bypass`` lets traffic pass undelayed whenever no program is bound (not yet
started, or dead). Queue numbers are per namespace.

The program is :mod:`.delayprog`; :func:`start` runs it in a namespace, in its own
session, and waits for its ``ready``; :func:`stop` SIGTERMs it (it accepts what it holds).
Undo order: the rule first, then the program, so nothing is queued to a program that is
gone. Measured: 100 ms requested added 100.3 ms to the median TCP connect, 0.0 ms to a
link without the fault.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys

from harness.core.errors import HarnessError

MODULE = "harness.platform.local.net.delayprog"


def iptables() -> str:
    """The iptables to use: ``iptables-nft`` (no legacy trace), else whatever there is."""
    for name in ("iptables-nft", "iptables"):
        if shutil.which(name):
            return name
    raise HarnessError("latency faults need iptables (NFQUEUE)", fix="apt-get install iptables")


def rule(binary: str, verb: str, destinations: list[str], queue: int, comment: str) -> list[str]:
    """The iptables argv adding (``-A``) or deleting (``-D``) the queueing rule."""
    return [binary, "-w", "-t", "mangle", verb, "OUTPUT", "-d", ",".join(destinations),
            "-m", "comment", "--comment", comment, "-j", "NFQUEUE", "--queue-num", str(queue),
            "--queue-bypass"]  # fmt: skip


def start(prefix: list[str], cluster_id: str, queue: int, delay_ms: float,
          jitter_ms: float) -> subprocess.Popen:  # fmt: skip
    """The program started under ``prefix`` (a namespace's exec prefix), once it is bound."""
    argv = [sys.executable, "-m", MODULE, "--cluster", cluster_id, "--queue", str(queue),
            "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms)]  # fmt: skip
    program = subprocess.Popen([*prefix, *argv], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)  # fmt: skip
    assert program.stdout is not None and program.stderr is not None
    if program.stdout.readline().strip() != b"ready":
        with contextlib.suppress(OSError):
            os.killpg(program.pid, signal.SIGKILL)
        program.wait()
        error = program.stderr.read().decode(errors="replace").strip()[-500:]
        stop(program)  # closes the pipes
        fix = "pip install NetfilterQueue (needs libnetfilter-queue-dev)"
        raise HarnessError(f"the delay program did not start: {error}", fix=fix)
    return program


def stop(program: subprocess.Popen) -> None:
    """SIGTERM (it releases what it holds), SIGKILL after 2 s; waited for."""
    with contextlib.suppress(OSError):
        os.killpg(program.pid, signal.SIGTERM)
    try:
        program.wait(2)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(program.pid, signal.SIGKILL)
        program.wait()
    for pipe in (program.stdout, program.stderr):
        if pipe is not None:
            pipe.close()
