"""The real predictor (``python -m serving``) as a subprocess on loopback, for the HTTP tests.

The session fixtures ``model_dir`` (an untrained tiny model) and ``server`` that use it live in
conftest.py, so every test file shares one server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.processes import http_ok, start_process, stop_process, wait_until_ready

MODEL = "word-ocr"
REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 120.0
MAX_INSTANCES = 256  # serving.payloads.DEFAULT_LIMITS.max_instances
MAX_REQUEST_BYTES = 2_000_000  # the test server's --max_request_bytes


@dataclass
class Server:
    url: str
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(model_dir: Path, log_path: Path, *extra_args: str) -> Iterator[Server]:
    """``python -m serving`` as a subprocess, ready to answer; always stopped afterwards, and killed
    with the test process if that is killed first."""
    port = _free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        process = start_process(
            [sys.executable, "-m", "serving", "--model_dir", str(model_dir), "--model_name", MODEL,
             "--http_port", str(port), *extra_args],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    srv = Server(f"http://127.0.0.1:{port}", log_path, process)
    try:
        try:
            wait_until_ready(lambda: http_ok(f"{srv.url}/v2/health/ready", timeout_s=1), "the server",
                             STARTUP_TIMEOUT_S, process, interval_s=0.25)  # fmt: skip
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}:\n{srv.log_tail()}")
        yield srv
    finally:
        stop_process(process, 20)
