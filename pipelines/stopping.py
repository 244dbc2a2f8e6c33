"""How a local run ends when asked to: Ctrl-C, SIGTERM or SIGHUP (a closed terminal).

Whatever the run started (the pipeline's task processes and theirs, the predictor) is ended
first. While the pipeline runs, the run then exits at once: kfp.local would otherwise wait for
its worker threads, retry pauses included, before letting an interrupt through. Otherwise
the signal becomes a KeyboardInterrupt, so the caller stops the predictor and closes its log.

What no handler sees (SIGKILL) is covered by the parent-death signal the predictor is started
with (tools/processes.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

from tools.processes import descendant_pids, end_processes

# Seconds the processes the run started get to exit after SIGTERM before SIGKILL.
END_TIMEOUT_S = 5.0

_last_words: list[Callable[[], None]] = []  # what to say and flush before exiting at once


def _stop(signum: int, frame) -> None:
    end_processes(descendant_pids(), END_TIMEOUT_S)
    if _last_words:
        for say in reversed(_last_words):
            with contextlib.suppress(Exception):  # nothing may keep the run from exiting now
                say()
        os._exit(128 + signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """While the block runs, Ctrl-C, SIGTERM and SIGHUP end what the run started, then the run;
    the previous handlers come back afterwards. Only the main thread may set handlers: elsewhere
    this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, _stop) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def exit_at_once_on_stop(last_words: Callable[[], None]) -> Iterator[None]:
    """While the block runs, a stop signal ends the started processes, calls ``last_words`` (say
    what stopped, flush the log) and exits the process with 128 + the signal's number."""
    _last_words.append(last_words)
    try:
        yield
    finally:
        _last_words.remove(last_words)
