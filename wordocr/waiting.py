"""Waiting for a freshly started server (the predictor, a storage emulator, a browser driver),
and stopping it again.

One loop for every caller, so each one fails the same clear way: the process died (its exit
code), or it never became ready (how long was waited), instead of hanging or a bare traceback.
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a GET of ``url`` answers 200 now; no server (yet), an error status or a timeout: False."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except OSError:  # URLError, connection refused or reset, timeouts
        return False


def wait_until_ready(
    ready: Callable[[], bool],
    what: str,
    timeout_s: float,
    process: subprocess.Popen | None = None,
    interval_s: float = 0.2,
) -> None:
    """Poll ``ready()`` until it is true.

    Raises RuntimeError when ``process`` exits first and TimeoutError after ``timeout_s``
    seconds, each naming ``what``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        if ready():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was not ready after {timeout_s:g} s")
        time.sleep(interval_s)


def stop_process(process: subprocess.Popen, timeout_s: float, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` if ``process`` still runs, give it ``timeout_s`` seconds to exit, then kill it;
    it is reaped either way."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
