"""A bounded load test: N concurrent clients for a fixed time against a running predictor.

    python -m bench.load --url http://127.0.0.1:8080 [--clients 8] [--duration 20]

Each client is a thread with its own keep-alive connection, sending a fixed mix of requests
(v1 word, v1 image, v2 word, v2 image, in turn) back to back until the time is up or the request
budget is spent; it stops by itself. Any answer other than 200, and any transport error, counts as
an error. On 2 shared cores the Python clients take a good share of the CPU: requests/s is a floor
for the server, and latency includes the wait for a core. ``run_hey`` drives one request kind
with ``hey`` instead, where it is installed (``apt-get install hey``), which costs the server far
less of the CPU.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections import defaultdict

import httpx
import numpy as np

log = logging.getLogger("bench.load")

DEFAULT_MODEL = "word-ocr"
MAX_REQUESTS = 200_000  # a hard cap whatever the duration
REQUEST_TIMEOUT_S = 30.0
MAX_ERROR_SAMPLES = 5


def request_mix(model: str = DEFAULT_MODEL) -> list[tuple[str, str, dict]]:
    """(kind, path, body) for each request kind the clients take turns at."""
    from PIL import Image

    from wordocr.render import render_request_word

    png = io.BytesIO()
    Image.fromarray(render_request_word("game")).save(png, format="PNG")
    image_b64 = base64.b64encode(png.getvalue()).decode()

    def v2(name: str, value: str) -> dict:
        return {"inputs": [{"name": name, "shape": [1], "datatype": "BYTES", "data": [value]}]}

    v1_path, v2_path = f"/v1/models/{model}:predict", f"/v2/models/{model}/infer"
    return [
        ("v1_word", v1_path, {"instances": [{"word": "game"}]}),
        ("v1_image", v1_path, {"instances": [{"image_b64": image_b64}]}),
        ("v2_word", v2_path, v2("word", "game")),
        ("v2_image", v2_path, v2("image", image_b64)),
    ]


def _summary(latencies_ms: list[float]) -> dict:
    if not latencies_ms:
        return {"n": 0, "p50_ms": None, "p99_ms": None}
    values = np.asarray(latencies_ms)
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
    }


def run_load(
    base_url: str,
    clients: int = 8,
    duration_s: float = 20.0,
    model: str = DEFAULT_MODEL,
    max_requests: int = MAX_REQUESTS,
    mix: list[tuple[str, str, dict]] | None = None,
    honour_retry_after: bool = False,
) -> dict:
    """Load ``base_url`` with ``clients`` threads for ``duration_s`` seconds; return the measurements.

    ``mix``: the (kind, path, body) requests the clients take turns at; by default ``request_mix``.
    ``honour_retry_after``: a client refused with 503 waits the ``Retry-After`` it was given, as a
    well-behaved client (or Knative's activator) does, instead of sending again at once.
    """
    mix = [(kind, path, json.dumps(body).encode()) for kind, path, body in (mix or request_mix(model))]
    lock = threading.Lock()
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    statuses: dict[str, int] = defaultdict(int)
    sent = 0
    start = time.perf_counter()
    deadline = start + duration_s

    def client(offset: int) -> None:
        nonlocal sent
        headers = {"content-type": "application/json"}
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as http:
            turn = offset
            while time.perf_counter() < deadline:
                with lock:
                    if sent >= max_requests:
                        return
                    sent += 1
                kind, path, body = mix[turn % len(mix)]
                turn += 1
                began = time.perf_counter()
                try:
                    response = http.post(path, content=body, headers=headers)
                    status = str(response.status_code)
                    backoff = _retry_after(response) if honour_retry_after else 0.0
                    problem = None
                    if response.status_code != 200:
                        problem = f"{kind}: {response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    status, backoff = type(exc).__name__, 0.0
                    problem = f"{kind}: {type(exc).__name__}: {exc}"
                elapsed_ms = (time.perf_counter() - began) * 1000
                with lock:
                    statuses[status] += 1
                    if problem is None:
                        latencies[kind].append(elapsed_ms)
                    else:
                        errors.append(problem)
                if backoff:
                    time.sleep(min(backoff, max(0.0, deadline - time.perf_counter())))

    threads = [threading.Thread(target=client, args=(i,), name=f"load-{i}", daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration_s + 2 * REQUEST_TIMEOUT_S)
    wall_s = time.perf_counter() - start

    everything = [ms for values in latencies.values() for ms in values]
    result = {
        "clients": clients,
        "duration_s": round(wall_s, 2),
        "requests": len(everything) + len(errors),
        "requests_per_s": round((len(everything) + len(errors)) / wall_s, 1),
        "errors": len(errors),
        "statuses": dict(sorted(statuses.items())),
        **{k: v for k, v in _summary(everything).items() if k != "n"},
        "per_kind": {kind: _summary(values) for kind, values in sorted(latencies.items())},
        "error_samples": errors[:MAX_ERROR_SAMPLES],
    }
    log.info(
        "load: %d clients, %d requests in %.1f s (%.1f/s), p50 %s ms, p99 %s ms, %d errors",
        clients, result["requests"], wall_s, result["requests_per_s"], result["p50_ms"], result["p99_ms"],
        result["errors"],
    )  # fmt: skip
    return result


def _retry_after(response: httpx.Response) -> float:
    if response.status_code != 503:
        return 0.0
    try:
        return float(response.headers.get("retry-after", "0"))
    except ValueError:
        return 0.0


def hey_available() -> bool:
    return shutil.which("hey") is not None


def run_hey(url: str, body: bytes, clients: int, duration_s: float) -> dict:
    """``hey`` (Debian's Go load generator) posting ``body`` to ``url`` from ``clients`` connections.

    A Python client on the same two cores saturates before the server does (kserve's empty
    predict answers about 1,600 requests/s to hey there); hey's per-request CSV gives the
    latency and the status of every request.
    """
    with tempfile.NamedTemporaryFile(suffix=".json") as payload:
        payload.write(body)
        payload.flush()
        done = subprocess.run(
            ["hey", "-z", f"{duration_s}s", "-c", str(clients), "-m", "POST", "-T", "application/json",
             "-t", str(int(REQUEST_TIMEOUT_S)), "-D", payload.name, "-o", "csv", url],
            capture_output=True, text=True, timeout=duration_s + 2 * REQUEST_TIMEOUT_S, check=True,
        )  # fmt: skip
    rows = [line.split(",") for line in done.stdout.splitlines()[1:] if line.strip()]
    latencies = [float(row[0]) * 1000 for row in rows]
    statuses: dict[str, int] = defaultdict(int)
    for row in rows:
        statuses[row[6]] += 1
    ok = [ms for ms, row in zip(latencies, rows, strict=True) if row[6] == "200"]
    wall = max((float(row[7]) + float(row[0]) for row in rows), default=duration_s)
    result = {
        "tool": "hey",
        "clients": clients,
        "duration_s": round(wall, 2),
        "requests": len(rows),
        "requests_per_s": round(len(rows) / wall, 1) if wall else 0.0,
        "ok_per_s": round(len(ok) / wall, 1) if wall else 0.0,
        "errors": len(rows) - len(ok),
        "statuses": dict(sorted(statuses.items())),
        **{k: v for k, v in _summary(ok).items() if k != "n"},
        "p99_all_ms": _summary(latencies)["p99_ms"],
    }
    log.info("hey: %d clients, %.1f requests/s (%s), p50 %s ms, p99 %s ms", clients, result["requests_per_s"],
             result["statuses"], result["p50_ms"], result["p99_ms"])  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--url", required=True, help="the predictor, e.g. http://127.0.0.1:8080")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds (default: %(default)s)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = run_load(args.url, args.clients, args.duration, args.model)
    print(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 and result["requests"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
