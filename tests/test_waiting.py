"""The one wait-for-a-server loop: ready, died, or never ready, each said clearly."""

import http.server
import signal
import subprocess
import sys
import threading

import pytest

from wordocr.waiting import http_ok, stop_process, wait_until_ready


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
