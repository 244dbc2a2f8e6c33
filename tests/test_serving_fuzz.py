"""No input breaks the service: property tests (hypothesis) of the request rules and of the real server.

Every request, however malformed, gets a 2xx or a 4xx (never a 5xx); a 4xx says why in a JSON
``{"error": "..."}``; and the server still reads a good request afterwards. The same inputs are
also thrown at :mod:`serving.payloads` and :func:`wordocr.preprocess.decode_image_bytes`
directly, where many more examples fit in the time. The server is the session's tiny-model
server from ``test_serving_http`` (127.0.0.1 only).
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from PIL import Image
from pydantic import ValidationError

from serving.payloads import parse_v1, parse_v2
from tests.support.tiny_data import TINY_SPEC, render_word
from tests.test_serving_http import MAX_REQUEST_BYTES, MODEL
from wordocr.alphabet import DEFAULT_ALPHABET
from wordocr.preprocess import InvalidImageError, decode_image_bytes, preprocess

HTTP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIRECT = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

V1_PATH = f"/v1/models/{MODEL}:predict"
V2_PATH = f"/v2/models/{MODEL}/infer"


# --------------------------------------------------------------------------- images to throw


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (a decompression bomb when large)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", header) + (_png_chunk(b"IDAT", idat) if idat else b"") + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def tiff_with_fractional_strip_offset() -> bytes:
    """A 1x1 TIFF whose StripOffsets tag is a RATIONAL: Pillow raised TypeError on it (a 500)."""
    entries = [(256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (278, 3, 1), (279, 4, 1)]
    data_offset = 8 + 2 + 12 * (len(entries) + 1) + 4
    ifd = b""
    for tag, kind, value in sorted([*entries, (273, 5, data_offset)]):
        ifd += struct.pack("<HHIHH" if kind == 3 else "<HHII", tag, kind, 1, value, *([0] if kind == 3 else []))
    return b"II*\x00" + struct.pack("<IH", 8, len(entries) + 1) + ifd + struct.pack("<III", 0, 7, 2) + b"\x00"


def _special_images() -> dict[str, bytes]:
    word = Image.fromarray(render_word("apple", TINY_SPEC))
    frames = [word.convert("P"), Image.eval(word, lambda v: 255 - v).convert("P")]
    return {
        "png": _encode(word, "PNG"),
        "jpeg": _encode(word, "JPEG"),
        "png-16bit": _encode(Image.fromarray(np.asarray(word).astype(np.uint16) * 257), "PNG"),
        "jpeg-cmyk": _encode(word.convert("CMYK"), "JPEG"),
        "png-palette": _encode(word.convert("P"), "PNG"),
        "png-1bit": _encode(word.convert("1"), "PNG"),
        "png-gray-alpha": _encode(word.convert("LA"), "PNG"),
        "gif-animated": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50),
        "tiff-float": _encode(word.convert("F"), "TIFF"),
        "tiff-float-nan": _encode(Image.fromarray(np.full((4, 4), np.nan, np.float32)), "TIFF"),
        "tiff-lab": _encode(word.convert("RGB").convert("LAB"), "TIFF"),
        "tiff-fractional-offset": tiff_with_fractional_strip_offset(),
        "webp": _encode(word, "WEBP"),
        "bmp": _encode(word, "BMP"),
        "ico": _encode(word.convert("RGBA"), "ICO"),  # a real image, but not a format we read
        "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # would run Ghostscript
        "1x1": _encode(Image.new("L", (1, 1), 0), "PNG"),
        "1x10000": _encode(Image.new("L", (1, 10000), 0), "PNG"),
        "10000x1-stripes": _encode(Image.fromarray(np.tile(np.uint8([0, 255]), (1, 5000))), "PNG"),
        "bomb-header-only": png_claiming(100_000, 100_000),
        "bomb-4g-header": png_claiming(2**32 - 1, 2**32 - 1),
        "bomb-zero-size": png_claiming(0, 0),
        # 5000 x 5000 zero pixels (25 M, over our 20 M limit) in a 25 kB file.
        "bomb-real": png_claiming(5000, 5000, zlib.compress(b"\x00" * (5001 * 5000), 9)),
    }


SPECIAL_IMAGES = _special_images()


@st.composite
def image_bytes(draw) -> bytes:
    """Arbitrary bytes, a special image, or a special image truncated or with a few bytes changed."""
    choice = draw(st.sampled_from(["random", "special", "truncated", "mutated"]))
    if choice == "random":
        return draw(st.binary(max_size=512))
    data = SPECIAL_IMAGES[draw(st.sampled_from(sorted(SPECIAL_IMAGES)))]
    if choice == "truncated":
        return data[: draw(st.integers(0, len(data)))]
    if choice == "mutated":
        mutable = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            mutable[draw(st.integers(0, len(mutable) - 1))] = draw(st.integers(0, 255))
        return bytes(mutable)
    return data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------------- bodies to throw

# Words: any unicode (control characters, surrogates, combining marks), long ones, and real ones.
words = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, blacklist_categories=()), max_size=20),
    st.text(min_size=100, max_size=3000),
    st.from_regex(r"\s*[a-zA-Z]{1,12}\s*", fullmatch=True),
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
images_b64 = st.one_of(
    image_bytes().map(b64),
    st.text(max_size=200),  # mostly invalid base64
    image_bytes().map(lambda d: "data:image/png;base64," + b64(d)),
)
instances = st.one_of(
    st.fixed_dictionaries({"word": words}),
    st.fixed_dictionaries({"image_b64": images_b64}),
    st.fixed_dictionaries(
        {}, optional={"word": json_values | words, "image_b64": json_values | images_b64, "return_image": json_values}
    ),
    json_values,
)
v1_bodies = st.one_of(
    st.fixed_dictionaries({"instances": st.lists(instances, max_size=5)}),
    st.dictionaries(st.sampled_from(["instances", "inputs", "data"]), json_values, max_size=2),
    json_values,
)
v2_inputs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["word", "image"]) | json_values,
        "shape": st.lists(st.integers(-2, 300), max_size=3) | json_values,
        "datatype": st.sampled_from(["BYTES", "FP32", "INT32", "BOOL", "FP16"]) | json_values,
        "data": st.lists(words | images_b64 | json_values, max_size=4) | json_values,
        "parameters": st.dictionaries(st.sampled_from(["binary_data_size", "content_type", "x"]), json_values),
    },
)
v2_bodies = st.one_of(
    st.fixed_dictionaries(
        {"inputs": st.lists(v2_inputs, max_size=3)},
        optional={
            "id": json_values,
            "outputs": st.lists(st.fixed_dictionaries({"name": json_values}), max_size=2) | json_values,
            "parameters": json_values,
        },
    ),
    json_values,
)


@st.composite
def well_formed_v2(draw) -> dict:
    """A v2 body that passes the schema: it reaches our own validation."""
    name = draw(st.sampled_from(["word", "image"]))
    data = draw(st.lists(words if name == "word" else images_b64, min_size=1, max_size=3))
    shape = draw(st.sampled_from([[len(data)], [len(data), 1], [len(data) + 1], [1, len(data)]]))
    return {
        "id": draw(st.text(max_size=8)),
        "inputs": [{"name": name, "shape": shape, "datatype": "BYTES", "data": data}],
    }


# --------------------------------------------------------------------------- the contract


def assert_client_error_or_ok(response: requests.Response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers.get("content-type", "").startswith("application/json"), response.text[:200]
        error = response.json().get("error")
        assert isinstance(error, str) and error.strip(), response.text[:500]


def assert_still_serving(server) -> None:
    response = requests.post(f"{server.url}{V1_PATH}", json={"instances": [{"word": "ok"}]}, timeout=60)
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 1


def post(server, path: str, **kwargs) -> requests.Response:
    return requests.post(f"{server.url}{path}", timeout=60, **kwargs)


def _json_body(value) -> bytes:
    # json.dumps keeps lone surrogates as \ud800 escapes: valid JSON that is not valid UTF-8 text.
    return json.dumps(value).encode()


JSON = {"content-type": "application/json"}

# --------------------------------------------------------------------------- over HTTP


@HTTP
@given(body=v1_bodies)
def test_v1_any_json_body(server, body):
    assert_client_error_or_ok(post(server, V1_PATH, data=_json_body(body), headers=JSON))
    assert_still_serving(server)


@HTTP
@given(
    body=st.binary(max_size=2048),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
        ]
    ),
)
@example(body=b"[" * 100_000, content_type="text/plain")  # deeper than Python's JSON parser goes: was a 500
@example(body=b'{"instances": [{"word": "\xff"}]}', content_type="text/plain")
def test_any_bytes_to_every_predict_route(server, body, content_type):
    for path in (V1_PATH, V2_PATH, "/predict"):
        assert_client_error_or_ok(post(server, path, data=body, headers={"content-type": content_type}))
    assert_still_serving(server)


@HTTP
@given(words=st.lists(words, min_size=1, max_size=4))
def test_any_words(server, words):
    response = post(server, V1_PATH, data=_json_body({"instances": [{"word": w} for w in words]}), headers=JSON)
    assert_client_error_or_ok(response)
    as_form = post(server, "/predict", data={"input_word": words[0].encode("utf-8", "surrogatepass")})
    assert_client_error_or_ok(as_form)
    assert_still_serving(server)


@HTTP
@given(image=images_b64)
def test_any_image(server, image):
    assert_client_error_or_ok(
        post(server, V1_PATH, data=_json_body({"instances": [{"image_b64": image}]}), headers=JSON)
    )
    v2 = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [image]}]}
    assert_client_error_or_ok(post(server, V2_PATH, data=_json_body(v2), headers=JSON))
    assert_still_serving(server)


@pytest.mark.parametrize("name", sorted(SPECIAL_IMAGES))
def test_special_images(server, name):
    data = SPECIAL_IMAGES[name]
    response = post(server, V1_PATH, json={"instances": [{"image_b64": b64(data)}]})
    assert_client_error_or_ok(response)
    if name.startswith("bomb") or name in ("eps", "ico", "tiff-fractional-offset"):
        assert response.status_code == 400 and "not a readable image" in response.json()["error"]
    assert_still_serving(server)


@HTTP
@given(body=v2_bodies | well_formed_v2())
@example(body={"id": "\ud800", "inputs": [{"name": "word", "shape": [1], "datatype": "BYTES", "data": ["a"]}]})
@example(body={"inputs": [{"name": "word", "shape": [1], "datatype": "\ud800", "data": ["a"]}]})
@example(
    body={
        "inputs": [{"name": "word", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
        "outputs": [{"name": "\ud800"}],
    }
)
def test_v2_any_body(server, body):
    assert_client_error_or_ok(post(server, V2_PATH, data=_json_body(body), headers=JSON))
    assert_still_serving(server)


@HTTP
@given(
    header=v2_bodies | well_formed_v2(),
    tail=st.binary(max_size=64),
    declared=st.one_of(st.none(), st.integers(-5, 400).map(str), st.from_regex(r"[0-9a-z+.-]{1,6}", fullmatch=True)),
)
@example(
    header={"inputs": [{"name": "word", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 3}}]},
    tail=b"\x04\x00\x00",
    declared=None,
)
@example(
    header={"inputs": [{"name": "word", "shape": [2], "datatype": "INT32", "parameters": {"binary_data_size": 3}}]},
    tail=b"abc",
    declared=None,
)
@example(header={"inputs": []}, tail=b"", declared="xyz")
def test_v2_binary_extension_any_framing(server, header, tail, declared):
    json_part = _json_body(header)
    length = str(len(json_part)) if declared is None else declared
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": length,
    }
    assert_client_error_or_ok(post(server, V2_PATH, data=json_part + tail, headers=headers))
    assert_still_serving(server)


def test_a_good_binary_v2_request_still_works(server):
    header = _json_body(
        {"inputs": [{"name": "word", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 8}}]}
    )
    response = post(
        server,
        V2_PATH,
        data=header + struct.pack("<I", 4) + b"game",
        headers={"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["shape"] == [1]


@pytest.mark.parametrize("path", [V1_PATH, V2_PATH, "/predict"])
def test_an_oversized_body_is_a_413_with_a_message(server, path):
    response = post(server, path, data=b"x" * (MAX_REQUEST_BYTES + 1), headers=JSON)
    assert response.status_code == 413
    assert_client_error_or_ok(response)
    assert_still_serving(server)


# --------------------------------------------------------------------------- directly


def assert_sendable(exc: InvalidInput) -> None:
    """An error a client gets as JSON: non-empty, and encodable (kserve's handler UTF-8-encodes it)."""
    message = str(exc)
    assert message.strip()
    json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")


@DIRECT
@given(body=v1_bodies | st.binary(max_size=256) | v1_bodies.map(_json_body))
@example(body=b"[" * 100_000)
def test_parse_v1_accepts_or_refuses_with_a_message(body):
    try:
        parsed = parse_v1(body, DEFAULT_ALPHABET, TINY_SPEC.max_word_length)
    except InvalidInput as exc:
        assert_sendable(exc)
        return
    assert parsed.items
    for item in parsed.items:
        assert (item.word is None) != (item.image is None)
        if item.word is not None:
            assert DEFAULT_ALPHABET.is_valid(item.word, TINY_SPEC.max_word_length)


@DIRECT
@given(body=v2_bodies | well_formed_v2())
@example(body={"id": "\ud800", "inputs": [{"name": "word", "shape": [1], "datatype": "BYTES", "data": ["a"]}]})
def test_parse_v2_accepts_or_refuses_with_a_message(body):
    try:
        request = InferRequest.from_inference_request(InferenceRequest.model_validate(body), MODEL)
    except (ValidationError, InvalidInput):
        return  # refused by kserve's schema before our code: a 4xx (see test_v2_any_body)
    try:
        parsed = parse_v2(request, DEFAULT_ALPHABET, TINY_SPEC.max_word_length)
    except InvalidInput as exc:
        assert_sendable(exc)
        return
    assert parsed.items
    json.dumps({"id": request.id}, ensure_ascii=False).encode("utf-8")  # the id is echoed back


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt files it reads
@DIRECT
@given(data=image_bytes())
def test_decode_image_bytes_reads_or_refuses(data):
    try:
        gray = decode_image_bytes(data)
    except InvalidImageError as exc:
        assert str(exc).strip()
        return
    assert gray.dtype == np.uint8 and gray.ndim == 2
    out = preprocess(gray, TINY_SPEC)
    assert out.shape == (TINY_SPEC.height, TINY_SPEC.width) and out.dtype == np.uint8


@pytest.mark.parametrize("name", ["tiff-fractional-offset", "eps", "bomb-real", "bomb-header-only"])
def test_decode_image_bytes_refuses_what_it_must_not_read(name):
    with pytest.raises(InvalidImageError):
        decode_image_bytes(SPECIAL_IMAGES[name])


# --------------------------------------------------------------------------- features we do not have


@pytest.mark.parametrize(
    "path",
    [f"{V2_PATH}?model_version=2", f"/v2/models/{MODEL}/versions/2/infer", f"/v1/models/{MODEL}:explain"],
)
def test_asking_for_a_feature_the_server_lacks_is_a_400(server, path):
    # kserve answers 501 (NotImplementedError) for model versions and explainers: found by schemathesis.
    body = {"inputs": [{"name": "word", "shape": [1], "datatype": "BYTES", "data": ["game"]}]}
    response = post(server, path, json=body if "v2" in path else {"instances": [{"word": "game"}]})
    assert response.status_code in (400, 404), response.text
    assert_client_error_or_ok(response)
    assert_still_serving(server)


@pytest.mark.parametrize("action", ["unload", "load"])
def test_clients_cannot_unload_the_model(server, action):
    response = post(server, f"/v2/repository/models/{MODEL}/{action}")
    assert response.status_code == 403, response.text
    assert_client_error_or_ok(response)
    assert_still_serving(server)


# --------------------------------------------------------------------------- load


def test_a_short_load_run_has_no_errors(server):
    from bench.load import run_load

    result = run_load(server.url, clients=2, duration_s=2.0, model=MODEL)
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] > 0
    assert set(result["per_kind"]) == {"v1_word", "v1_image", "v2_word", "v2_image"}
    assert result["p99_ms"] >= result["p50_ms"] > 0
