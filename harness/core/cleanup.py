"""Make SIGTERM (and SIGHUP) unwind like Ctrl-C, so every ``with`` block cleans up; and the
start/stop context every long-running part of the harness uses."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(SystemExit):
    """Raised in the main thread when the harness receives SIGTERM or SIGHUP."""


def _raise(signum: int, frame: object) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def unwind_on_termination() -> Iterator[None]:
    """Within this block SIGTERM/SIGHUP raise :class:`Terminated` (exit code 128+signal).

    SIGINT already raises KeyboardInterrupt. A no-op outside the main thread, where Python
    cannot install signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class StartStopContext:
    """``with thing:`` starts it, and stops it on the way out (also after a failed start)."""

    def start(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
