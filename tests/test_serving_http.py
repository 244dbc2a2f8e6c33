"""The real KServe ModelServer (``python -m serving``) over loopback HTTP, with an untrained tiny model.

An untrained model reads arbitrary strings, so these tests check the API's contract (shapes,
types, ordering, errors, health) rather than what it reads; reading real words is the
recognizer's and the pipeline's business. The server binds 0.0.0.0 (kserve's choice); traffic
goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time

import numpy as np
import pytest
import requests
from PIL import Image

from tests.support.serving_server import (  # noqa: F401 (shared with other serving tests)
    MAX_INSTANCES,
    MAX_REQUEST_BYTES,
    MODEL,
    REPO_ROOT,
    Server,
    _free_port,
    running_server,
)
from tests.support.tiny_data import TINY_SPEC, render_word
from wordocr.alphabet import DEFAULT_ALPHABET

# --------------------------------------------------------------------------- helpers


def png_b64(image: np.ndarray | Image.Image, fmt: str = "PNG") -> str:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def word_image_b64(word: str, fmt: str = "PNG") -> str:
    return png_b64(render_word(word, TINY_SPEC), fmt)


def v1_predict(server: Server, body, **kwargs) -> requests.Response:
    return requests.post(f"{server.url}/v1/models/{MODEL}:predict", json=body, timeout=60, **kwargs)


def v2_infer(server: Server, inputs: list[dict], **extra) -> requests.Response:
    return requests.post(f"{server.url}/v2/models/{MODEL}/infer", json={"inputs": inputs, **extra}, timeout=60)


def assert_reading(text, confidence, paths, confidences) -> None:
    """What every reading must look like, whatever an untrained model reads."""
    assert isinstance(text, str)
    assert set(text) <= set(DEFAULT_ALPHABET.chars)
    assert len(text) <= TINY_SPEC.time_steps
    assert isinstance(confidence, float)
    assert 0.0 <= confidence <= 1.0
    assert len(paths) == 3 and len(confidences) == 3
    assert all(isinstance(p, str) and set(p) <= set(DEFAULT_ALPHABET.chars) for p in paths)
    assert all(isinstance(c, float) and 0.0 <= c <= 1.0 for c in confidences)
    assert confidences == sorted(confidences, reverse=True)


def assert_v1_predictions(response: requests.Response, count: int) -> list[dict]:
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == count
    for p in predictions:
        assert set(p) == {"pred_text", "confidence", "top_3_paths", "top_3_confidences"}
        assert_reading(p["pred_text"], p["confidence"], p["top_3_paths"], p["top_3_confidences"])
    return predictions


def v2_outputs(response: requests.Response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == MODEL
    return {o["name"]: o for o in body["outputs"]}


def assert_v2_readings(outputs: dict[str, dict], count: int) -> list[tuple]:
    assert outputs["pred_text"]["datatype"] == "BYTES" and outputs["pred_text"]["shape"] == [count]
    assert outputs["confidence"]["datatype"] == "FP32" and outputs["confidence"]["shape"] == [count]
    assert outputs["top_3_paths"]["datatype"] == "BYTES" and outputs["top_3_paths"]["shape"] == [count, 3]
    assert outputs["top_3_confidences"]["datatype"] == "FP32"
    assert outputs["top_3_confidences"]["shape"] == [count, 3]
    readings = []
    for i in range(count):
        reading = (
            outputs["pred_text"]["data"][i],
            float(outputs["confidence"]["data"][i]),
            outputs["top_3_paths"]["data"][3 * i : 3 * i + 3],
            [float(c) for c in outputs["top_3_confidences"]["data"][3 * i : 3 * i + 3]],
        )
        assert_reading(*reading)
        readings.append(reading)
    return readings


# --------------------------------------------------------------------------- health


def test_health_and_readiness(server):
    assert requests.get(f"{server.url}/", timeout=5).json() == {"status": "alive"}
    assert requests.get(f"{server.url}/v1/models/{MODEL}", timeout=5).json() == {"name": MODEL, "ready": True}
    assert requests.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/v2/models/{MODEL}/ready", timeout=5).json()["ready"] is True
    assert requests.get(f"{server.url}/v1/models", timeout=5).json() == {"models": [MODEL]}


def test_unknown_model_is_404(server):
    response = requests.post(f"{server.url}/v1/models/nope:predict", json={"instances": [{"word": "a"}]}, timeout=5)
    assert response.status_code == 404
    assert "nope" in response.json()["error"]


# --------------------------------------------------------------------------- v1


def test_v1_word_batch(server):
    assert_v1_predictions(v1_predict(server, {"instances": [{"word": w} for w in ["game", "dog", "Tree"]]}), 3)


def test_v1_image_batch_png_jpeg_and_mixed_with_words(server):
    color = Image.fromarray(render_word("moon", TINY_SPEC)).convert("RGB").resize((300, 100))
    instances = [
        {"image_b64": word_image_b64("cat")},
        {"word": "cat"},
        {"image_b64": word_image_b64("river", "JPEG")},
        {"image_b64": png_b64(color)},  # colour, another size: preprocessing normalises it
    ]
    assert_v1_predictions(v1_predict(server, {"instances": instances}), 4)


def test_a_reading_does_not_depend_on_its_batch_or_protocol(server):
    alone = assert_v1_predictions(v1_predict(server, {"instances": [{"word": "apple"}]}), 1)[0]
    batch = assert_v1_predictions(
        v1_predict(server, {"instances": [{"word": "sun"}, {"word": "APPLE"}, {"word": "book"}]}), 3
    )[1]
    via_v2 = assert_v2_readings(v2_outputs(v2_infer(server, [_v2_input("word", ["apple"])])), 1)[0]
    for other in (batch, {"pred_text": via_v2[0], "confidence": via_v2[1], "top_3_paths": via_v2[2]}):
        assert other["pred_text"] == alone["pred_text"]
        assert other["top_3_paths"] == alone["top_3_paths"]
        assert other["confidence"] == pytest.approx(alone["confidence"], rel=1e-3, abs=1e-6)


def test_v1_largest_batch(server):
    assert_v1_predictions(v1_predict(server, {"instances": [{"word": "game"}] * MAX_INSTANCES}), MAX_INSTANCES)


# --------------------------------------------------------------------------- v2


def _v2_input(name: str, data: list, shape=None, datatype: str = "BYTES") -> dict:
    return {"name": name, "shape": [len(data)] if shape is None else shape, "datatype": datatype, "data": data}


def test_v2_words(server):
    outputs = v2_outputs(v2_infer(server, [_v2_input("word", ["game", "dog"])], id="req-7"))
    assert_v2_readings(outputs, 2)


def test_v2_request_id_is_echoed(server):
    body = {"id": "req-7", "inputs": [_v2_input("word", ["game"])]}
    response = requests.post(f"{server.url}/v2/models/{MODEL}/infer", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "req-7"


def test_v2_images_and_words_together(server):
    inputs = [_v2_input("image", [word_image_b64("cat"), word_image_b64("tree", "JPEG")]), _v2_input("word", ["sun"])]
    assert_v2_readings(v2_outputs(v2_infer(server, inputs)), 3)


def test_v2_metadata(server):
    response = requests.get(f"{server.url}/v2/models/{MODEL}", timeout=5)
    assert response.status_code == 200
    assert response.json()["name"] == MODEL


# --------------------------------------------------------------------------- prototype route


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_prototype_form_route(server, encoding):
    if encoding == "urlencoded":
        response = requests.post(f"{server.url}/predict", data={"input_word": "game"}, timeout=60)
    else:
        response = requests.post(f"{server.url}/predict", files={"input_word": (None, "game")}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"pred_texts", "top_3_paths"}
    assert len(body["pred_texts"]) == 1 and len(body["top_3_paths"]) == 3
    v1 = assert_v1_predictions(v1_predict(server, {"instances": [{"word": "game"}]}), 1)[0]
    assert body == {"pred_texts": [v1["pred_text"]], "top_3_paths": v1["top_3_paths"]}


# --------------------------------------------------------------------------- bad input


def _truncated_png() -> str:
    data = base64.b64decode(word_image_b64("apple"))
    return base64.b64encode(data[: len(data) // 2]).decode()


V1 = "v1"
V2 = "v2"
FORM = "form"
RAW = "raw"

BAD_REQUESTS = [
    ("v1 body not JSON", RAW, b"{not json", "Unrecognized request format"),
    ("v1 form body", FORM + "-v1", {"input_word": "game"}, "expected a JSON body"),
    ("missing instances", V1, {"words": ["game"]}, 'missing "instances"'),
    ("instances not a list", V1, {"instances": "game"}, "must be a list"),
    ("neither word nor image", V1, {"instances": [{"text": "game"}]}, "unknown keys ['text']"),
    ("empty instance", V1, {"instances": [{}]}, 'exactly one of "word" or "image_b64"'),
    ("empty word", V1, {"instances": [{"word": ""}]}, "word is empty"),
    ("word too long", V1, {"instances": [{"word": "a" * (TINY_SPEC.max_word_length + 1)}]},
     f"the model reads at most {TINY_SPEC.max_word_length}"),
    ("foreign characters", V1, {"instances": [{"word": "game"}, {"word": "naïve"}]},
     "instances[1]: word contains characters outside the alphabet"),
    ("word not a string", V1, {"instances": [{"word": 42}]}, "word must be a string"),
    ("invalid base64", V1, {"instances": [{"image_b64": "***"}]}, "image is not valid base64"),
    ("not an image", V1, {"instances": [{"image_b64": base64.b64encode(b"hello, world").decode()}]},
     "instances[0]: not a readable image"),
    ("truncated image", V1, {"instances": [{"word": "cat"}, {"image_b64": _truncated_png()}]},
     "instances[1]: not a readable image"),
    ("batch too large", V1, {"instances": [{"word": "a"}] * (MAX_INSTANCES + 1)}, f"at most {MAX_INSTANCES}"),
    ("v2 wrong datatype", V2, [_v2_input("word", [1, 2], datatype="INT32")], "must have datatype BYTES"),
    ("v2 shape mismatch", V2, [_v2_input("word", ["game", "dog"], shape=[3])], "says 3 elements but data has 2"),
    ("v2 shape 2-d", V2, [_v2_input("word", ["game", "dog"], shape=[1, 2])], "shape [N] (or [N, 1])"),
    ("v2 unknown input", V2, [_v2_input("text", ["game"])], "unknown inputs ['text']"),
    ("v2 bad word", V2, [_v2_input("word", ["ok", "n0pe"])], "inputs[word][1]: word contains characters"),
    ("v2 not an image", V2, [_v2_input("image", [base64.b64encode(b"GIF89a?").decode()])],
     "inputs[image][0]: not a readable"),
    ("v2 batch too large", V2, [_v2_input("word", ["a"] * (MAX_INSTANCES + 1))], f"at most {MAX_INSTANCES}"),
    ("form without input_word", FORM, {"word": "game"}, 'form field "input_word"'),
    ("form bad word", FORM, {"input_word": "game!"}, "outside the alphabet"),
]


def _send(server: Server, kind: str, payload) -> requests.Response:
    if kind == V1:
        return v1_predict(server, payload)
    if kind == V2:
        return v2_infer(server, payload)
    if kind == FORM:
        return requests.post(f"{server.url}/predict", data=payload, timeout=60)
    if kind == FORM + "-v1":
        return requests.post(f"{server.url}/v1/models/{MODEL}:predict", data=payload, timeout=60)
    return requests.post(
        f"{server.url}/v1/models/{MODEL}:predict", data=payload, headers={"content-type": "application/json"},
        timeout=60,
    )


@pytest.mark.parametrize(("kind", "payload", "message"), [c[1:] for c in BAD_REQUESTS],
                         ids=[c[0] for c in BAD_REQUESTS])
def test_bad_input_is_a_400_that_says_why_and_the_server_keeps_serving(server, kind, payload, message):
    response = _send(server, kind, payload)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert_v1_predictions(v1_predict(server, {"instances": [{"word": "ok"}]}), 1)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_refused_unread(server, chunked):
    body = b'{"instances": [{"image_b64": "' + b"A" * MAX_REQUEST_BYTES + b'"}]}'
    data = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = requests.post(
        f"{server.url}/v1/models/{MODEL}:predict", data=data, headers={"content-type": "application/json"},
        timeout=60,
    )
    # A declared length is refused before reading; a chunked body as soon as it passes the limit.
    assert response.status_code == 413, response.text
    assert f"the limit is {MAX_REQUEST_BYTES}" in response.json()["error"]
    assert_v1_predictions(v1_predict(server, {"instances": [{"word": "ok"}]}), 1)


# --------------------------------------------------------------------------- event loop


def test_health_checks_answer_while_batches_are_being_read(server):
    """Inference runs off the event loop: health answers while big batches are still queued."""
    words = [{"image_b64": word_image_b64(w)} for w in ("apple", "river", "moon", "tree")] * (MAX_INSTANCES // 4)
    done: list[int] = []

    def send_batch():
        done.append(v1_predict(server, {"instances": words}).status_code)

    threads = [threading.Thread(target=send_batch) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        # Wait until the server has the batches, then check health: with inference on the event
        # loop this answer would only come after every batch, i.e. after the threads finish.
        time.sleep(0.3)
        health = requests.get(f"{server.url}/v2/health/ready", timeout=60)
        finished_before_health = len(done)
    finally:
        for t in threads:
            t.join(timeout=120)
    assert health.status_code == 200
    assert done == [200] * 4
    assert finished_before_health < 4, "health check waited for every batch: inference blocks the event loop"


# --------------------------------------------------------------------------- gRPC


@pytest.mark.slow
def test_grpc_v2_when_enabled(model_dir, tmp_path):
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    grpc_port = _free_port()

    async def infer(words: list[str]):
        client = InferenceGRPCClient(f"127.0.0.1:{grpc_port}", retries=0)
        try:
            request = InferRequest(MODEL, [InferInput("word", [len(words)], "BYTES", words)], request_id="g1")
            return await client.infer(request)
        finally:
            await client.close()

    with running_server(model_dir, tmp_path / "server.log", "--grpc_port", str(grpc_port)):
        response = asyncio.run(infer(["game", "dog"]))
        outputs = {o.name: o for o in response.outputs}
        assert outputs["pred_text"].shape == [2] and outputs["top_3_paths"].shape == [2, 3]
        texts = [t.decode() if isinstance(t, bytes) else t for t in outputs["pred_text"].data]
        assert all(set(t) <= set(DEFAULT_ALPHABET.chars) for t in texts)

        with pytest.raises(Exception, match="outside the alphabet") as info:
            asyncio.run(infer(["game!"]))
        assert "INVALID_ARGUMENT" in str(info.value)


def test_a_refused_request_is_one_warning_line_in_the_log_not_a_traceback(server):
    response = v1_predict(server, {"instances": [{"word": "refused" * 3}]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    log = server.log_tail(400)
    line = next((line for line in log.splitlines() if error in line), None)
    assert line is not None, log
    assert " WARNING " in line and "refused a request (InvalidInput)" in line, line
    assert "Traceback" not in log[log.index(error) :], log
