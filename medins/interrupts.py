"""Ctrl-C and SIGTERM during a run: stop, clean up, exit 130 or 143 — never a traceback, never a leftover.

Why an exception: SIGTERM's default action ends the process at once, skipping every ``finally``; the
run's temporaries, spill folder and worker processes would outlive it. Raised as an exception in the
main thread instead, the signal unwinds the run through the same ``finally`` blocks as an error does
(:class:`medins.atomic.OutputFiles` removes the temporaries, ``medins.partitioned.workers_for`` ends
the workers). It derives from ``BaseException`` (like ``KeyboardInterrupt``) so no ``except Exception``
on the way swallows it. Once it is raised, further SIGINT/SIGTERM are ignored so the cleanup finishes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The run was stopped by ``signum``; the shell convention exit code is 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum

    #: Set when the signal came after the run's outputs were renamed into place (they are whole).
    after_commit = False

    def message(self, lang: str) -> str:
        name = signal.Signals(self.signum).name
        if self.after_commit:
            if lang == "zh":
                return f"运行被中断({name}):输出文件已完整写出,临时文件与工作进程已清理"
            return f"interrupted ({name}) after the outputs were written in full; temporary files and workers removed"
        if lang == "zh":
            return f"运行被中断({name}):未替换任何输出文件,临时文件与工作进程已清理"
        return f"interrupted ({name}): no output was replaced; temporary files and worker processes were removed"


@contextmanager
def stop_cleanly() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (only in the main thread, where
    Python runs signal handlers; elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame) -> None:
        for sig in _SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)
