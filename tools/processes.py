"""Starting a helper process (the predictor, a storage emulator, a browser driver) that never
outlives its starter, waiting until it is ready, and stopping it again; finding and ending the
processes a process started (Linux's /proc).

One loop for every caller, so each one fails the same clear way: the process died (its exit
code), or it never became ready (how long was waited), instead of hanging or a bare traceback.

Standard library only, so the runner, the bench and the tests can all use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _linux_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when its parent ends, however
    the parent ends (SIGKILL included); None where that is not available (not Linux).

    The kernel ties the signal to the *thread* that forks, so start the child from a thread that
    lives as long as the child should (``start_process`` only sets it from the main thread)."""
    prctl = _linux_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        # Runs in the child between fork and exec: no imports, no locks.
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os.kill(os.getpid(), sig)

    return preexec


def start_process(command: Sequence[str], death_signal: int = signal.SIGKILL, **popen_kwargs) -> subprocess.Popen:
    """``subprocess.Popen(command, **popen_kwargs)`` whose child is sent ``death_signal`` when this
    process ends, even by SIGKILL (Linux; elsewhere a plain Popen).

    The default is SIGKILL: once the parent is gone nobody is left to escalate a polite signal.
    Callers still stop the child themselves when they end normally (``stop_process``)."""
    if "preexec_fn" in popen_kwargs:
        raise TypeError("start_process sets preexec_fn itself")
    preexec = None
    if threading.current_thread() is threading.main_thread():
        preexec = die_with_parent(death_signal)
    else:
        log.debug("not tying %s to this process: started from a thread that may end first", command[0])
    return subprocess.Popen(list(command), preexec_fn=preexec, **popen_kwargs)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc; {} where there is no /proc."""
    parents = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # "pid (command) state ppid ...": the command may hold spaces and parentheses.
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        parents[int(entry)] = int(fields[1])
    return parents


def child_pids(pid: int | None = None) -> list[int]:
    """The processes whose parent is ``pid`` (default: this process); [] where there is no /proc."""
    parent = os.getpid() if pid is None else pid
    return [child for child, its_parent in _parents().items() if its_parent == parent]


def descendant_pids(pid: int | None = None) -> list[int]:
    """Children, their children and so on of ``pid`` (default: this process), parents first."""
    parents = _parents()
    found, frontier = [], [os.getpid() if pid is None else pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found.extend(frontier)
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except (OSError, IndexError):
        return False


def end_processes(pids: list[int], timeout_s: float) -> None:
    """SIGTERM each of ``pids``, then SIGKILL those still running after ``timeout_s`` seconds.
    Nothing is reaped: whose children they are decides who does that."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while (running := [pid for pid in pids if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


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
