"""The real ModelServer on 127.0.0.1 under concurrent requests: shared model runs, answers kept apart,
a bounded queue that answers 503 with Retry-After, and a per-request budget of decoded pixels."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.support.serving_server import MODEL, running_server
from tests.test_serving_http import assert_v1_predictions, v1_predict, word_image_b64

pytestmark = pytest.mark.slow

BATCH_HEADER = "x-model-batch"  # serving.predictor.BATCH_HEADER
WORDS = ("apple", "river", "moon", "tree", "book", "sun", "dog", "cat")
# This server's limits: small enough that a test reaches them with a few requests.
MAX_QUEUED_ITEMS = 300
MAX_DECODED_PIXELS = 1_000_000


@pytest.fixture(scope="module")
def small_server(model_dir, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("small-server") / "server.log"
    flags = ("--enable_grpc", "false", "--batch_wait_ms", "20", "--max_queued_items", str(MAX_QUEUED_ITEMS),
             "--max_decoded_pixels", str(MAX_DECODED_PIXELS))  # fmt: skip
    with running_server(model_dir, log_path, *flags) as srv:
        yield srv


def together(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run the calls at the same moment, one thread each; their responses in order."""
    barrier = threading.Barrier(len(calls))
    responses: list = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait(30)
        try:
            responses[i] = calls[i]()
        except requests.RequestException as exc:
            responses[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return responses


def shared_run(response: requests.Response) -> dict[str, int]:
    """``images=12; requests=5`` as a dict."""
    return {key.strip(): int(value) for key, value in
            (part.split("=") for part in response.headers[BATCH_HEADER].split(";"))}  # fmt: skip


def image_request(words) -> dict:
    return {"instances": [{"image_b64": word_image_b64(w)} for w in words]}


def white_png_b64(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# --------------------------------------------------------------------------- batching


def test_concurrent_requests_share_model_runs_and_each_gets_only_its_own_readings(small_server):
    bodies = [image_request(WORDS[i : i + 1 + i % 3]) for i in range(len(WORDS))]  # 1 to 3 images each
    alone = [assert_v1_predictions(v1_predict(small_server, body), len(body["instances"])) for body in bodies]
    assert all(shared_run(v1_predict(small_server, bodies[0])) == {"images": 1, "requests": 1} for _ in range(3))

    most_shared = 1
    for _ in range(5):  # concurrency is up to the OS's scheduling: a few rounds to see runs shared
        responses = together([lambda body=body: v1_predict(small_server, body) for body in bodies])
        for body, response, expected in zip(bodies, responses, alone, strict=True):
            got = assert_v1_predictions(response, len(body["instances"]))
            assert [p["pred_text"] for p in got] == [p["pred_text"] for p in expected]
            assert [p["top_3_paths"] for p in got] == [p["top_3_paths"] for p in expected]
            assert [p["confidence"] for p in got] == pytest.approx([p["confidence"] for p in expected], abs=1e-4)
            run = shared_run(response)
            assert run["images"] >= len(body["instances"]) and run["requests"] >= 1
            most_shared = max(most_shared, run["requests"])
        if most_shared > 1:
            break
    assert most_shared > 1, "eight concurrent requests never shared a model run"


def test_a_bad_item_fails_only_its_own_request_with_a_400(small_server):
    good = [image_request([w]) for w in WORDS[:6]]
    bad = {"instances": [{"image_b64": word_image_b64("moon")},
                         {"image_b64": base64.b64encode(b"\x89PNG\r\n\x1a\n not really").decode()}]}  # fmt: skip
    alone = [assert_v1_predictions(v1_predict(small_server, body), 1)[0]["pred_text"] for body in good]
    for _ in range(3):
        *answers, refused = together([lambda body=body: v1_predict(small_server, body) for body in [*good, bad]])
        assert refused.status_code == 400
        assert "instances[1]" in refused.json()["error"] and "not a readable image" in refused.json()["error"]
        assert [assert_v1_predictions(a, 1)[0]["pred_text"] for a in answers] == alone


# --------------------------------------------------------------------------- overload


def test_beyond_the_queue_bound_requests_get_503_with_retry_after_and_the_server_recovers(small_server):
    # Four requests of 256 images: one fits the 300-image queue, the others must be refused
    # while it is being read, not queued behind it.
    big = image_request([WORDS[i % len(WORDS)] for i in range(256)])
    responses = together([lambda: v1_predict(small_server, big) for _ in range(4)])
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses, statuses
    assert set(statuses) <= {200, 503}
    for refused in (r for r in responses if r.status_code == 503):
        assert refused.headers["Retry-After"] == "1"
        assert "at capacity" in refused.json()["error"]
    # Nothing leaked: the full queue drains and a request that fits is read again.
    assert_v1_predictions(v1_predict(small_server, big), 256)


def test_a_request_over_the_decoded_pixel_budget_is_refused_with_413_naming_the_budget(small_server):
    side = 800  # 640,000 pixels: one fits the 1,000,000 budget, two do not
    image = white_png_b64(side, side)
    assert v1_predict(small_server, {"instances": [{"image_b64": image}]}).status_code == 200
    refused = v1_predict(small_server, {"instances": [{"word": "moon"}, {"image_b64": image}, {"image_b64": image}]})
    assert refused.status_code == 413
    message = refused.json()["error"]
    assert "1,000,000 decoded pixels per request" in message and "instances[2]" in message
    assert "1,280,000" in message
    assert_v1_predictions(v1_predict(small_server, {"instances": [{"word": "moon"}]}), 1)


def test_the_default_budget_refuses_many_huge_images_before_decoding_them(server):
    # Three 16-megapixel pages of white paper: small to send, 48 M pixels to decode.
    image = white_png_b64(4000, 4000)
    refused = v1_predict(server, {"instances": [{"image_b64": image}] * 3})
    assert refused.status_code == 413
    assert "40,000,000 decoded pixels per request" in refused.json()["error"]


def test_v2_requests_are_batched_and_bounded_too(small_server):
    image = white_png_b64(800, 800)
    inputs = [{"name": "image", "shape": [2], "datatype": "BYTES", "data": [image, image]}]
    refused = requests.post(f"{small_server.url}/v2/models/{MODEL}/infer", json={"inputs": inputs}, timeout=60)
    assert refused.status_code == 413 and "decoded pixels per request" in refused.json()["error"]
    one = [{"name": "word", "shape": [1], "datatype": "BYTES", "data": ["moon"]}]
    answered = requests.post(f"{small_server.url}/v2/models/{MODEL}/infer", json={"inputs": one}, timeout=60)
    assert answered.status_code == 200 and shared_run(answered)["images"] >= 1


# --------------------------------------------------------------------------- runtimes


def _mapped_files(pid: int) -> set[str]:
    return {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "/" in line}


def test_the_default_predictor_process_has_no_tensorflow_loaded(server):
    libraries = _mapped_files(server.process.pid)
    assert any("onnxruntime" in path for path in libraries)
    assert not [path for path in libraries if "tensorflow" in path]


def test_the_keras_runtime_reads_the_same_as_the_onnx_default(model_dir, server, tmp_path):
    body = image_request(WORDS[:4])
    expected = assert_v1_predictions(v1_predict(server, body), 4)
    with running_server(model_dir, tmp_path / "keras.log", "--enable_grpc", "false", "--runtime", "keras") as keras:
        assert any("tensorflow" in path for path in _mapped_files(keras.process.pid))
        got = assert_v1_predictions(v1_predict(keras, body), 4)
    assert [p["pred_text"] for p in got] == [p["pred_text"] for p in expected]
    assert [p["top_3_paths"] for p in got] == [p["top_3_paths"] for p in expected]
    assert [p["confidence"] for p in got] == pytest.approx([p["confidence"] for p in expected], abs=1e-4)

