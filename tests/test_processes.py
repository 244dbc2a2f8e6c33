"""Helper processes: the one wait-for-a-server loop (ready, died, or never ready, each said clearly),
stopping, and children that never outlive their parent."""

import http.server
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.processes import gone
from tools.processes import http_ok, start_process, stop_process, wait_until_ready

REPO = Path(__file__).resolve().parents[1]


def test_returns_once_the_probe_says_ready():
    answers = iter([False, False, True])
    calls = []
    wait_until_ready(lambda: calls.append(1) or next(answers), "thing", timeout_s=30, interval_s=0)
    assert len(calls) == 3


def test_a_process_that_dies_first_is_named_with_its_exit_code():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(RuntimeError, match=r"^the server exited with code 3 before it was ready$"):
        wait_until_ready(lambda: False, "the server", timeout_s=30, process=process)


def test_never_ready_ends_in_a_timeout_that_says_how_long():
    with pytest.raises(TimeoutError, match=r"^thing was not ready after 0.05 s$"):
        wait_until_ready(lambda: False, "thing", timeout_s=0.05, interval_s=0.01)


def test_http_ok_is_true_only_for_a_200():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ready" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        assert http_ok(f"{base}/ready")
        assert not http_ok(f"{base}/starting")
    finally:
        server.shutdown()
        server.server_close()
    assert not http_ok(f"{base}/ready")  # nobody listening any more


def test_stop_process_asks_first_and_kills_a_process_that_does_not_listen():
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_process(polite, timeout_s=30)
    assert polite.returncode == -signal.SIGTERM
    ignores_sigterm = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    )
    stubborn = subprocess.Popen([sys.executable, "-c", ignores_sigterm], stdout=subprocess.PIPE)
    stubborn.stdout.readline()  # its handler is in place
    stop_process(stubborn, timeout_s=0.5)
    assert stubborn.returncode == -signal.SIGKILL
    stubborn.stdout.close()
    stop_process(stubborn, timeout_s=1)  # an exited process: nothing to send, nothing raised


def _parent_of_a_sleeper(start: str) -> tuple[subprocess.Popen, int]:
    """A Python process that starts a sleeping child with ``start`` and prints the child's pid."""
    code = (
        "import subprocess, sys, time\n"
        "from tools.processes import start_process\n"
        f"child = {start}([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    return parent, int(parent.stdout.readline())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_started_process_ends_when_its_parent_is_sigkilled():
    parent, child = _parent_of_a_sleeper("start_process")
    parent.kill()
    parent.wait()
    parent.stdout.close()
    assert gone(child, timeout_s=30), f"pid {child} outlived its SIGKILLed parent"


def test_a_plain_popen_child_outlives_its_sigkilled_parent():
    # The case start_process exists for, and proof that the check above can fail.
    parent, child = _parent_of_a_sleeper("subprocess.Popen")
    parent.kill()
    parent.wait()
    parent.stdout.close()
    try:
        assert not gone(child, timeout_s=1)
    finally:
        os.kill(child, signal.SIGKILL)
        assert gone(child, timeout_s=30)


def test_start_process_keeps_popen_arguments():
    process = start_process([sys.executable, "-c", "print('hi')"], stdout=subprocess.PIPE, text=True)
    assert process.communicate(timeout=60)[0] == "hi\n"
    with pytest.raises(TypeError, match="preexec_fn"):
        start_process([sys.executable, "-c", "pass"], preexec_fn=lambda: None)
