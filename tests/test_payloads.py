"""Request validation and response shapes of the serving API, without a model or a server."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

from serving import payloads
from serving.payloads import ServingLimits, parse_v1, parse_v2, v1_response, v2_response
from wordocr.alphabet import DEFAULT_ALPHABET, Alphabet
from wordocr.config import WRITTEN

MAX_LEN = 16
PNG_BYTES = b"\x89PNG\r\n\x1a\n not really a png, payloads do not decode"
PNG_B64 = base64.b64encode(PNG_BYTES).decode()


def v1(body, limits: ServingLimits = payloads.DEFAULT_LIMITS):
    return parse_v1(body, DEFAULT_ALPHABET, MAX_LEN, limits)


def v2(*inputs: InferInput, limits: ServingLimits = payloads.DEFAULT_LIMITS):
    return parse_v2(InferRequest("word-ocr", list(inputs), request_id="r1"), DEFAULT_ALPHABET, MAX_LEN, limits)


def bytes_input(name: str, data, shape=None, datatype="BYTES") -> InferInput:
    return InferInput(name, [len(data)] if shape is None else shape, datatype, data)


# --------------------------------------------------------------------------- v1


def test_v1_words_and_images_keep_their_order():
    parsed = v1({"instances": [{"word": "game"}, {"image_b64": PNG_B64}, {"word": "zebra"}]})
    assert parsed.protocol == "v1"
    assert [item.kind for item in parsed.items] == ["word", "image", "word"]
    assert parsed.items[0].word == "game"
    assert parsed.items[1].image == PNG_BYTES
    assert parsed.items[2].word == "zebra"


def test_v1_words_are_stripped_and_lower_cased():
    assert v1({"instances": [{"word": "  GaMe\n"}]}).items[0].word == "game"


def test_a_model_that_reads_capitals_draws_the_word_as_typed():
    written = Alphabet(WRITTEN)
    body = {"instances": [{"word": " Game "}, {"word": "DON'T"}, {"word": "model2"}]}
    assert [item.word for item in parse_v1(body, written, MAX_LEN).items] == ["Game", "DON'T", "model2"]
    parsed = parse_v2(InferRequest("word-ocr", [bytes_input("word", ["Kubeflow"])], request_id="r1"), written, MAX_LEN)
    assert parsed.items[0].word == "Kubeflow"
    # The lower-case model still refuses what it cannot draw, saying which characters.
    with pytest.raises(InvalidInput, match="outside the alphabet"):
        v1({"instances": [{"word": "model2"}]})
    with pytest.raises(InvalidInput, match="outside the alphabet"):
        parse_v1({"instances": [{"word": "a-b"}]}, written, MAX_LEN)


def test_v1_json_sent_with_a_form_content_type_is_read_as_json():
    # `curl -d '{...}'` labels JSON as a form; kserve then hands the model the raw bytes.
    parsed = v1(b'{"instances": [{"word": "game"}]}')
    assert [item.word for item in parsed.items] == ["game"]


def test_v1_image_accepts_data_url_and_wrapped_base64():
    wrapped = "\n".join(PNG_B64[i : i + 8] for i in range(0, len(PNG_B64), 8))
    parsed = v1({"instances": [{"image_b64": "data:image/png;base64," + PNG_B64}, {"image_b64": wrapped}]})
    assert [item.image for item in parsed.items] == [PNG_BYTES, PNG_BYTES]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"input_word=game", "expected a JSON body"),
        ([{"word": "game"}], "expected a JSON object"),
        ({}, 'missing "instances"'),
        ({"inputs": []}, "v2 'inputs' go to /v2"),
        ({"instances": {"word": "game"}}, '"instances" must be a list'),
        ({"instances": []}, "empty"),
        ({"instances": ["game"]}, 'instances[0] must be an object with "word" or "image_b64"'),
        ({"instances": [{"text": "game"}]}, "unknown keys ['text']"),
        ({"instances": [{}]}, 'exactly one of "word" or "image_b64"'),
        ({"instances": [{"word": "game", "image_b64": PNG_B64}]}, "exactly one of"),
        ({"instances": [{"word": ""}]}, "instances[0]: word is empty"),
        ({"instances": [{"word": "   "}]}, "word is empty"),
        ({"instances": [{"word": 7}]}, "word must be a string, got number"),
        ({"instances": [{"word": None}]}, "word must be a string, got null"),
        ({"instances": [{"word": "a" * (MAX_LEN + 1)}]}, f"the model reads at most {MAX_LEN}"),
        ({"instances": [{"word": "game"}, {"word": "café"}]}, "instances[1]: word contains characters outside"),
        ({"instances": [{"word": "two words"}]}, "outside the alphabet"),
        ({"instances": [{"word": "r2d2"}]}, "'2'"),
        ({"instances": [{"image_b64": "not base64!"}]}, "instances[0]: image is not valid base64"),
        ({"instances": [{"image_b64": "abc"}]}, "not valid base64"),  # bad padding
        ({"instances": [{"image_b64": ""}]}, "image is empty"),
        ({"instances": [{"image_b64": 12}]}, "image must be a base64 string, got number"),
        ({"instances": [{"image_b64": "data:image/png,abc"}]}, "data URL"),
    ],
)
def test_v1_bad_requests_say_what_is_wrong(body, message):
    with pytest.raises(InvalidInput) as info:
        v1(body)
    assert message in str(info.value)


def test_v1_batch_limit():
    limits = ServingLimits(max_instances=4)
    assert len(v1({"instances": [{"word": "a"}] * 4}, limits).items) == 4
    with pytest.raises(InvalidInput, match="5 items; at most 4"):
        v1({"instances": [{"word": "a"}] * 5}, limits)


def test_v1_image_size_limit():
    limits = ServingLimits(max_image_bytes=30)
    with pytest.raises(InvalidInput, match="the limit is"):
        v1({"instances": [{"image_b64": base64.b64encode(b"x" * 300).decode()}]}, limits)
    with pytest.raises(InvalidInput, match="31 bytes; the limit is 30"):
        v1({"instances": [{"image_b64": base64.b64encode(b"x" * 31).decode()}]}, limits)


# --------------------------------------------------------------------------- v2


def test_v2_word_and_image_inputs():
    parsed = v2(bytes_input("word", ["Game", "zebra"]), bytes_input("image", [PNG_B64]))
    assert parsed.protocol == "v2"
    assert [(i.kind, i.word) for i in parsed.items] == [("word", "game"), ("word", "zebra"), ("image", None)]
    assert parsed.items[2].image == PNG_BYTES
    assert parsed.infer_request.id == "r1"


def test_v2_accepts_grpc_style_bytes_and_n_by_1_shape():
    parsed = v2(bytes_input("word", [b"game", b"dog"], shape=[2, 1]))
    assert [i.word for i in parsed.items] == ["game", "dog"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "no inputs"),
        ([bytes_input("text", ["game"])], "unknown inputs ['text']"),
        ([bytes_input("word", ["a"]), bytes_input("word", ["b"])], "each input may appear once"),
        ([bytes_input("word", [1.0], datatype="FP32")], "must have datatype BYTES, got FP32"),
        ([bytes_input("word", ["game", "dog"], shape=[3])], "says 3 elements but data has 2"),
        ([bytes_input("word", ["game", "dog"], shape=[1])], "says 1 elements but data has 2"),
        ([bytes_input("word", ["game"], shape=[1, 2])], "shape [N] (or [N, 1])"),
        ([bytes_input("word", ["game"], shape=[-1])], "invalid shape"),
        ([bytes_input("word", [], shape=[0])], "empty"),
        ([bytes_input("word", [3])], "inputs[word][0] must be a string, got number"),
        ([bytes_input("word", [["game"]])], "must be a string, got array"),
        ([bytes_input("word", ["ok", "NOT OK"])], "inputs[word][1]: word contains characters outside"),
        ([bytes_input("word", [b"\xff"])], "not valid UTF-8"),
        ([bytes_input("image", ["%%%"])], "inputs[image][0]: image is not valid base64"),
    ],
)
def test_v2_bad_requests_say_what_is_wrong(inputs, message):
    with pytest.raises(InvalidInput) as info:
        v2(*inputs)
    assert message in str(info.value)


def test_v2_batch_limit_counts_every_input():
    limits = ServingLimits(max_instances=3)
    with pytest.raises(InvalidInput, match="4 items; at most 3"):
        v2(bytes_input("word", ["a", "b"]), bytes_input("image", [PNG_B64, PNG_B64]), limits=limits)


# --------------------------------------------------------------------------- responses


@dataclass
class Recognition:
    """The fields of wordocr.recognizer.Recognition (imported there with TensorFlow, so not here)."""

    text: str
    confidence: float
    top_paths: list[str]
    top_confidences: list[float]


RECOGNITIONS = [
    Recognition("gane", 0.5, ["gane", "game"], [0.5, 0.25]),  # fewer paths than top_k
    Recognition("dog", 0.9, ["dog", "dig", "bog"], [0.9, 0.05, 0.01]),
]


def test_v1_response_always_has_top_k_sorted_paths():
    response = v1_response(RECOGNITIONS)
    first, second = response["predictions"]
    assert first == {
        "pred_text": "gane",
        "confidence": 0.5,
        "top_3_paths": ["gane", "game", ""],
        "top_3_confidences": [0.5, 0.25, 0.0],
    }
    assert second["top_3_paths"] == ["dog", "dig", "bog"]
    assert all(type(c) is float for c in second["top_3_confidences"])


def test_v2_response_tensors():
    request = InferRequest("word-ocr", [bytes_input("word", ["x", "y"])], request_id="abc")
    body, _ = v2_response(RECOGNITIONS, "word-ocr", request).to_rest()
    assert body["id"] == "abc"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["pred_text"] == {"name": "pred_text", "shape": [2], "datatype": "BYTES", "data": ["gane", "dog"]}
    assert outputs["confidence"]["datatype"] == "FP32"
    assert outputs["confidence"]["data"] == pytest.approx([0.5, 0.9])
    assert outputs["top_3_paths"]["shape"] == [2, 3]
    assert outputs["top_3_paths"]["data"] == ["gane", "game", "", "dog", "dig", "bog"]
    assert outputs["top_3_confidences"]["shape"] == [2, 3]


def test_v2_response_honours_requested_outputs():
    request = InferRequest(
        "word-ocr", [bytes_input("word", ["x", "y"])], request_outputs=[RequestedOutput("pred_text")]
    )
    body, _ = v2_response(RECOGNITIONS, "word-ocr", request).to_rest()
    assert [o["name"] for o in body["outputs"]] == ["pred_text"]
