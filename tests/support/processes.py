"""Which processes a test run has started and not ended, and waiting for one to be gone."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time

import psutil

_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
# The interpreter's own helpers: they end when this process does, however it ends.
_INTERPRETER_HELPERS = (
    "from multiprocessing.resource_tracker import main",
    "from multiprocessing.forkserver import main",
)


def adopt_orphans() -> bool:
    """Make this process the one that orphaned descendants are re-parented to (Linux), so that a
    grandchild whose parent was killed still counts as ours; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid}: {' '.join(process.cmdline()) or process.name()}"
    except psutil.Error:
        return f"pid {process.pid}"


def _is_interpreter_helper(process: psutil.Process) -> bool:
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return any(helper in command for helper in _INTERPRETER_HELPERS)


def running_descendants() -> list[psutil.Process]:
    """Descendants of this process that still run (zombies, which only wait to be reaped, and the
    interpreter's multiprocessing helpers left out)."""
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if _running(child) and not _is_interpreter_helper(child)
    ]


def reap_zombie_children() -> None:
    """Collect the exit status of children that ended unwaited for (orphans adopted by
    ``adopt_orphans`` end up here)."""
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error, ChildProcessError):
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)


def left_running(grace_s: float) -> list[str]:
    """Descendants still running after ``grace_s`` seconds (for those on their way out), described."""
    deadline = time.monotonic() + grace_s
    while (left := running_descendants()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [_describe(process) for process in left]


def kill_descendants() -> None:
    for process in running_descendants():
        with contextlib.suppress(psutil.Error):
            process.kill()
    reap_zombie_children()


def gone(pid: int, timeout_s: float) -> bool:
    """Whether process ``pid`` has ended (or is a zombie) within ``timeout_s`` seconds; an adopted
    zombie is reaped."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
