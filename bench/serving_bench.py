"""The predictor over HTTP, per runtime, in one run: start to ready, memory, latency per endpoint,
requests/s at 1, 8 and 32 clients, kserve's empty model beside it, and an overload run.

Every server is a real ``python -m serving`` (or ``bench.empty_server``) subprocess on loopback.
With ``hey`` installed the client-count runs use it (one request kind: one image, v1); without it,
the Python clients of ``bench.load``, which saturate first and make every figure a floor.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.load import hey_available, run_hey, run_load
from tools.processes import http_ok, start_process, stop_process, wait_until_ready

log = logging.getLogger("bench.serving")

MODEL = "word-ocr"
CLIENT_COUNTS = (1, 8, 32)
LOAD_SECONDS = 10.0
READY_TIMEOUT_S = 180.0


@dataclass
class Running:
    process: subprocess.Popen
    url: str
    start_to_ready_s: float

    def rss_mib(self, key: str = "VmRSS") -> float | None:
        return _status_mib(self.process.pid, key)


def _status_mib(pid: int, key: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(command: list[str], ready_path: str) -> Iterator[Running]:
    """A server subprocess on a free port, timed from launch to its first ready answer."""
    port = _free_port()
    started = time.perf_counter()
    process = start_process([*command, "--http_port", str(port), "--enable_grpc", "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(lambda: http_ok(f"{url}{ready_path}", timeout_s=1), " ".join(command[:3]), READY_TIMEOUT_S,
                         process, interval_s=0.05)  # fmt: skip
        yield Running(process, url, round(time.perf_counter() - started, 2))
    finally:
        stop_process(process, 15)


def predictor(model_dir: str, runtime: str, *flags: str):
    return running([sys.executable, "-m", "serving", "--model_dir", model_dir, "--runtime", runtime, *flags],
                   "/v2/health/ready")  # fmt: skip


def png_b64(image) -> str:
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def one_image_body() -> dict:
    from wordocr.render import render_request_word

    return {"instances": [{"image_b64": png_b64(render_request_word("game"))}]}


def client_runs(url: str, path: str, body: dict, counts=CLIENT_COUNTS, duration_s: float | None = None) -> dict:
    """Requests/s and latency at each client count (hey where installed, else Python clients)."""
    duration_s = duration_s or LOAD_SECONDS  # read at call time: bench.run sets it from --load-seconds
    results = {}
    for clients in counts:
        if hey_available():
            results[str(clients)] = run_hey(f"{url}{path}", json.dumps(body).encode(), clients, duration_s)
        else:
            results[str(clients)] = run_load(url, clients, duration_s, mix=[("v1_image", path, body)])
    return results


def measure_predictor(model_dir: str, runtime: str, endpoint_latency) -> dict:
    """One runtime's predictor: start, memory, per-endpoint latency (``endpoint_latency(url)``), load."""
    with predictor(model_dir, runtime) as server:
        result = {"runtime": runtime, "start_to_ready_s": server.start_to_ready_s,
                  "rss_after_load_mib": server.rss_mib()}  # fmt: skip
        log.info("%s predictor ready in %.1f s, %s MiB", runtime, server.start_to_ready_s, result["rss_after_load_mib"])
        result.update(endpoint_latency(server.url))
        result["clients"] = client_runs(server.url, f"/v1/models/{MODEL}:predict", one_image_body())
        result["load"] = result["clients"]["8"]
        result["predictor_rss_after_runs_mib"] = server.rss_mib()
        result["predictor_peak_rss_mib"] = server.rss_mib("VmHWM")
    return result


def measure_empty_kserve() -> dict:
    """kserve's own floor: a model that answers at once, under the same 8-client load."""
    with running([sys.executable, "-m", "bench.empty_server"], "/v2/health/ready") as server:
        runs = client_runs(server.url, "/v1/models/empty:predict", {"instances": [{}]}, counts=(8,))
        return {**runs["8"], "rss_after_load_mib": server.rss_mib(), "start_to_ready_s": server.start_to_ready_s}


def overload_run(model_dir: str, duration_s: float = LOAD_SECONDS) -> dict:
    """Beyond capacity and under hostile inputs, on the served runtime with its default limits.

    1. queue: 16 clients each sending 256 words a request (4,096 images in flight wanted, the
       queue holds 1,024): the excess must be answered 503 with Retry-After, at once; refused
       clients wait the Retry-After they were given.
    2. hostile: 8 clients sending two 20-megapixel white PNGs a request (the most the pixel
       budget lets through) and 8 sending sixteen (refused 413 before decoding), with small
       requests from 4 more clients in between: peak memory, statuses, and small requests' latency.
    3. afterwards: one ordinary request must still be answered.
    """
    from PIL import Image

    path = f"/v1/models/{MODEL}:predict"
    page = png_b64(Image.new("RGB", (5000, 4000), "white"))
    with predictor(model_dir, "onnx") as server:
        queue = run_load(server.url, clients=16, duration_s=duration_s, honour_retry_after=True,
                         mix=[("batch256_words", path, {"instances": [{"word": "game"}] * 256})])  # fmt: skip
        hostile_mix = [
            ("two_20mp_pngs", path, {"instances": [{"image_b64": page}] * 2}),
            ("sixteen_20mp_pngs", path, {"instances": [{"image_b64": page}] * 16}),
            ("two_20mp_pngs", path, {"instances": [{"image_b64": page}] * 2}),
            ("one_word_image", path, one_image_body()),
            ("sixteen_20mp_pngs", path, {"instances": [{"image_b64": page}] * 16}),
        ]
        hostile = run_load(server.url, clients=20, duration_s=duration_s, mix=hostile_mix, honour_retry_after=True)
        began = time.perf_counter()
        after = http_ok(f"{server.url}/v2/health/ready", timeout_s=5)
        import httpx

        answer = httpx.post(f"{server.url}{path}", json=one_image_body(), timeout=30)
        return {
            "queue_16_clients_256_words": _brief(queue),
            "hostile_20mp_pngs": _brief(hostile),
            "page_png_bytes": len(base64.b64decode(page)),
            "after": {"ready": after, "status": answer.status_code,
                      "ms": round((time.perf_counter() - began) * 1000, 1)},
            "predictor_peak_rss_mib": server.rss_mib("VmHWM"),
            "predictor_rss_after_mib": server.rss_mib(),
        }


def _brief(load: dict) -> dict:
    keep = ("clients", "duration_s", "requests", "requests_per_s", "statuses", "p50_ms", "p99_ms", "per_kind")
    return {key: load[key] for key in keep if key in load}
