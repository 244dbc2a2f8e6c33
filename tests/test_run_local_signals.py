"""What `make run` / `make serve` starts ends with the runner, however the runner ends: the predictor
on Ctrl-C (SIGINT to the terminal's process group), SIGTERM, or SIGKILL, which no handler sees; the
pipeline's running tasks on SIGTERM.

Real processes only: ``python -m pipelines.run_local`` (``--serve-only`` serving an untrained tiny
model, or a quick pipeline run), what it started found as its children, then the runner signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.processes import gone
from tools.processes import child_pids, http_ok, start_process, stop_process
from wordocr.publish import publish_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"),
]

REPO = Path(__file__).resolve().parents[1]
MODEL = "word-ocr"
READY_S = 180  # the runner's own limit for the predictor is 120 s


@pytest.fixture(scope="module")
def served_workdir(model_dir, tmp_path_factory) -> Path:
    """A work folder in which a model has been published, as after `make run`."""
    workdir = tmp_path_factory.mktemp("served")
    publish_model(str(model_dir), str(workdir / "serving"), MODEL, {"word_accuracy": 0.0})
    return workdir


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Runner:
    """``run_local`` in its own session (so its process group is what a terminal's Ctrl-C reaches),
    its console read by a thread."""

    def __init__(self, workdir: Path, *args: str):
        self.port = _free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.process = start_process(
            [sys.executable, "-m", "pipelines.run_local", "--workdir", str(workdir), "--model-name", MODEL,
             "--port", str(self.port), *args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def console(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + READY_S
        while not done():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} never happened (runner's exit code {self.process.poll()}):\n{self.console}")
            time.sleep(0.2)

    def wait_until_serving(self) -> int:
        """The predictor's pid, once the runner has printed its curl lines."""
        self.wait_for(lambda: any("curl -s http://localhost" in line for line in self.lines), "serving")
        assert http_ok(f"http://127.0.0.1:{self.port}/v1/models/{MODEL}")
        [predictor] = child_pids(self.process.pid)
        return predictor

    def stop(self) -> None:
        stop_process(self.process, 20, signal.SIGTERM)
        self._reader.join(timeout=10)
        self.process.stdout.close()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "Ctrl-C"])
def test_the_predictor_ends_with_the_runner(served_workdir, how):
    runner = Runner(served_workdir, "--serve-only")
    try:
        predictor = runner.wait_until_serving()
        if how == "Ctrl-C":
            os.killpg(runner.process.pid, signal.SIGINT)  # what the terminal sends its foreground group
        else:
            os.kill(runner.process.pid, getattr(signal, how))
        runner.process.wait(timeout=60)
        assert gone(predictor, timeout_s=60), f"the predictor (pid {predictor}) outlived the runner ({how})"
        assert not http_ok(f"http://127.0.0.1:{runner.port}/v1/models/{MODEL}", timeout_s=1)
    finally:
        runner.stop()
    if how != "SIGKILL":  # a run that could clean up says where its log is, last
        runner._reader.join(timeout=10)
        assert runner.lines[-1].startswith("full log: "), runner.console
        log = Path(runner.lines[-1].removeprefix("full log: ")).read_text()
        assert "starting the predictor" in log


def test_a_terminated_run_ends_its_running_tasks(tmp_path):
    runner = Runner(tmp_path, "--quick", "--no-serve")
    first_seen: dict[int, float] = {}

    def a_task_has_run_a_while() -> bool:  # each task is a child process of the runner
        now = time.monotonic()
        for pid in child_pids(runner.process.pid):
            first_seen.setdefault(pid, now)
        return any(now - seen > 2 and pid in child_pids(runner.process.pid) for pid, seen in first_seen.items())

    try:
        runner.wait_for(a_task_has_run_a_while, "a task running for 2 s")
        tasks = child_pids(runner.process.pid)
        os.kill(runner.process.pid, signal.SIGTERM)
        assert runner.process.wait(timeout=60) == 128 + signal.SIGTERM
        for task in tasks:
            assert gone(task, timeout_s=60), f"task pid {task} outlived the terminated run"
    finally:
        runner.stop()
    runner._reader.join(timeout=10)
    assert "stopped" in runner.lines, runner.console
    assert runner.lines[-1].startswith("full log: "), runner.console
