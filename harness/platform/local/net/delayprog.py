"""The delay program (see :mod:`.delay`): holds each queued packet, then accepts it.

``python -m harness.platform.local.net.delayprog --cluster ID --queue N --delay-ms D
[--jitter-ms J]``: binds NFQUEUE ``N`` of its namespace, prints ``ready``, and accepts each
packet ``D ± J`` ms (uniform) after it arrived, never before an earlier one (order kept).
SIGTERM or SIGINT: accepts what it holds, unbinds, exits 0.
"""

from __future__ import annotations

import argparse
import collections
import random
import select
import signal
import sys
import time
from typing import Any

MAX_HELD = 65536  # the kernel queue's length: packets beyond it are dropped (bypass: passed)


class _Stop(Exception):
    pass


def _stop(_signum: int, _frame: Any) -> None:
    raise _Stop


def main(argv: list[str]) -> int:
    from netfilterqueue import COPY_META, NetfilterQueue

    parser = argparse.ArgumentParser(prog="delayprog")
    parser.add_argument("--cluster", required=True)  # a marker the clean-up finds us by
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    delay, jitter = args.delay_ms / 1000, args.jitter_ms / 1000
    held: collections.deque = collections.deque()
    last = 0.0

    def on_packet(packet: Any) -> None:
        nonlocal last
        last = max(time.monotonic() + delay + random.uniform(-jitter, jitter), last)
        held.append((last, packet))

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    queue = NetfilterQueue()
    queue.bind(args.queue, on_packet, max_len=MAX_HELD, mode=COPY_META)
    fd = queue.get_fd()
    print("ready", flush=True)
    try:
        while True:
            timeout = max(0.0, held[0][0] - time.monotonic()) if held else 1.0
            if select.select([fd], [], [], timeout)[0]:
                queue.run(block=False)
            now = time.monotonic()
            while held and held[0][0] <= now:
                held.popleft()[1].accept()
    except _Stop:
        pass
    finally:
        while held:  # the rule is gone before we are stopped: let what we hold go
            held.popleft()[1].accept()
        queue.unbind()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
