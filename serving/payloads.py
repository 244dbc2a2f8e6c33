"""Requests in, responses out: the word-ocr serving API as plain Python.

Nothing here runs a model or a server, so every rule below is unit-tested without either.
A request becomes a list of :class:`WorkItem` (a normalised word, or the encoded bytes of
an image); the predictor turns items into model inputs and hands back one
:class:`~wordocr.recognizer.Recognition` per item, which this module turns into a response.

Every check a client can fail happens here, *before* any numpy or model code runs, and
raises :class:`kserve.errors.InvalidInput` (HTTP 400) with a message that names the
instance and says what was wrong. The one check left for later is whether image bytes
really are a readable image: that takes decoding, which the predictor does off the event
loop and reports as :class:`InvalidInput` too (see :func:`image_error`).

API (both protocols take batches; results keep the order of the instances):

* v1 ``{"instances": [{"word": "game"}, {"image_b64": "<base64 PNG/JPEG>"}]}`` ->
  ``{"predictions": [{"pred_text", "confidence", "top_3_paths", "top_3_confidences"}]}``.
  An instance may add ``"return_image": true``; its prediction then also carries
  ``"model_input_png_b64"``, the image the model read (base64 PNG, after rendering or
  preprocessing). Off by default, so the response is unchanged unless asked for.
* v2 inputs named ``word`` and/or ``image``, datatype ``BYTES``, shape ``[N]`` (or
  ``[N, 1]``), data UTF-8 words or base64 images -> outputs ``pred_text`` BYTES ``[N]``,
  ``confidence`` FP32 ``[N]``, ``top_3_paths`` BYTES ``[N, 3]``, ``top_3_confidences``
  FP32 ``[N, 3]``. With both inputs, ``word`` items come first if that input comes first.

Words are normalised before validation: surrounding whitespace is stripped, and for a model whose
alphabet has no capitals (every model trained on lower-case text) upper case is lower-cased
("Game" is drawn as "game"), because a client typing a capital means the same word. A model that
reads capitals draws the word as typed. Anything else outside the alphabet is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from wordocr.alphabet import Alphabet, InvalidWordError

WORD_KEY = "word"
IMAGE_KEY = "image_b64"
RETURN_IMAGE_KEY = "return_image"
MODEL_INPUT_KEY = "model_input_png_b64"
V2_WORD_INPUT = "word"
V2_IMAGE_INPUT = "image"
DATA_URL_PREFIX = "data:"


@dataclass(frozen=True)
class ServingLimits:
    """What one request may ask for; beyond these a request is refused, not queued."""

    max_instances: int = 256
    # Encoded image size; decoding also caps the pixel count (wordocr.preprocess).
    max_image_bytes: int = 4 * 1024 * 1024
    top_k: int = 3

    @property
    def max_image_b64_chars(self) -> int:
        return 4 * math.ceil(self.max_image_bytes / 3)


DEFAULT_LIMITS = ServingLimits()


@dataclass(frozen=True)
class WorkItem:
    """One thing to read: exactly one of ``word`` (validated, normalised) or ``image`` (bytes)."""

    where: str  # how the client names this item in errors, e.g. "instances[3]"
    word: str | None = None
    image: bytes | None = None
    return_image: bool = False  # v1 only: send back the model input as a PNG

    @property
    def kind(self) -> Literal["word", "image"]:
        return "word" if self.word is not None else "image"


@dataclass
class ParsedRequest:
    """A validated request: its items, and what the response must look like."""

    items: list[WorkItem]
    protocol: Literal["v1", "v2"]
    infer_request: InferRequest | None = None  # v2 only: id, requested outputs, binary flags


# --------------------------------------------------------------------------- validation


def normalise_word(value: Any, where: str, alphabet: Alphabet, max_word_length: int) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{where}: word is not valid UTF-8 ({exc.reason})") from None
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: word must be a string, got {_json_type(value)}")
    word = value.strip()
    if not alphabet.has_capitals:
        word = word.lower()
    try:
        return alphabet.validate(word, max_word_length)
    except InvalidWordError as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def decode_base64_image(value: Any, where: str, limits: ServingLimits) -> bytes:
    """Base64 text (optionally a ``data:image/...;base64,`` URL) to the encoded image bytes."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidInput(f"{where}: image must be base64 text, got non-ASCII bytes") from None
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: image must be a base64 string, got {_json_type(value)}")
    if len(value) > limits.max_image_b64_chars + 256:  # headroom for a data-URL prefix and line breaks
        raise InvalidInput(
            f"{where}: image is {len(value)} base64 characters; the limit is "
            f"{limits.max_image_b64_chars} ({limits.max_image_bytes} bytes encoded)"
        )
    if value.startswith(DATA_URL_PREFIX):
        header, sep, value = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise InvalidInput(f"{where}: a data URL image must look like 'data:image/png;base64,<data>'")
    # Tolerate line-wrapped base64 (the `base64` tool wraps at 76 columns), nothing else.
    text = "".join(value.split())
    if not text:
        raise InvalidInput(f"{where}: image is empty")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{where}: image is not valid base64 ({exc})") from None
    if len(data) > limits.max_image_bytes:
        raise InvalidInput(f"{where}: image is {len(data)} bytes; the limit is {limits.max_image_bytes}")
    return data


def image_error(where: str, exc: Exception) -> InvalidInput:
    """The client-facing error for image bytes that turned out not to be a readable image."""
    return InvalidInput(f"{where}: not a readable image: {exc}")


def _check_batch_size(count: int, limits: ServingLimits, what: str) -> None:
    if count == 0:
        raise InvalidInput(f"{what} is empty: send at least one word or image")
    if count > limits.max_instances:
        raise InvalidInput(
            f"{what} has {count} items; at most {limits.max_instances} per request (split the batch)"
        )


# --------------------------------------------------------------------------- v1

_V1_EXAMPLE = '{"instances": [{"word": "game"}]} or {"instances": [{"image_b64": "<base64 PNG/JPEG>"}]}'


def _json_from_raw(body: bytes | bytearray | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than Python's stack ("[[[[..."); kserve's own JSON path
        # (orjson) refuses such bodies too.
        raise InvalidInput(f"expected a JSON body like {_V1_EXAMPLE}") from None


def parse_v1(
    body: Any, alphabet: Alphabet, max_word_length: int, limits: ServingLimits = DEFAULT_LIMITS
) -> ParsedRequest:
    if isinstance(body, bytes | bytearray | str):
        # kserve hands non-JSON content types to the model as raw bytes; `curl -d` sends JSON labelled
        # as a form, so read the bytes as JSON before giving up.
        body = _json_from_raw(body)
    if not isinstance(body, dict):
        raise InvalidInput(f"expected a JSON object like {_V1_EXAMPLE}, got {_json_type(body)}")
    if "instances" not in body:
        hint = " (v2 'inputs' go to /v2/models/<name>/infer)" if "inputs" in body else ""
        raise InvalidInput(f'missing "instances"{hint}: send {_V1_EXAMPLE}')
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InvalidInput(f'"instances" must be a list, got {_json_type(instances)}')
    _check_batch_size(len(instances), limits, '"instances"')

    items = []
    for i, instance in enumerate(instances):
        where = f"instances[{i}]"
        if not isinstance(instance, dict):
            raise InvalidInput(
                f'{where} must be an object with "{WORD_KEY}" or "{IMAGE_KEY}", got {_json_type(instance)}'
            )
        unknown = sorted(set(instance) - {WORD_KEY, IMAGE_KEY, RETURN_IMAGE_KEY})
        if unknown:
            raise InvalidInput(
                f'{where} has unknown keys {unknown}; use "{WORD_KEY}" or "{IMAGE_KEY}" (and optionally '
                f'"{RETURN_IMAGE_KEY}")'
            )
        if (WORD_KEY in instance) == (IMAGE_KEY in instance):
            raise InvalidInput(f'{where} must have exactly one of "{WORD_KEY}" or "{IMAGE_KEY}"')
        return_image = instance.get(RETURN_IMAGE_KEY, False)
        if not isinstance(return_image, bool):
            raise InvalidInput(f'{where}: "{RETURN_IMAGE_KEY}" must be true or false, got {_json_type(return_image)}')
        if WORD_KEY in instance:
            word = normalise_word(instance[WORD_KEY], where, alphabet, max_word_length)
            items.append(WorkItem(where, word=word, return_image=return_image))
        else:
            image = decode_base64_image(instance[IMAGE_KEY], where, limits)
            items.append(WorkItem(where, image=image, return_image=return_image))
    return ParsedRequest(items, "v1")


# --------------------------------------------------------------------------- v2


def parse_v2(
    request: InferRequest, alphabet: Alphabet, max_word_length: int, limits: ServingLimits = DEFAULT_LIMITS
) -> ParsedRequest:
    _check_v2_text_fields(request)
    inputs = list(request.inputs or [])
    if not inputs:
        raise InvalidInput(f'no inputs: send an input named "{V2_WORD_INPUT}" or "{V2_IMAGE_INPUT}"')
    names = [inp.name for inp in inputs]
    unknown = sorted(set(names) - {V2_WORD_INPUT, V2_IMAGE_INPUT})
    if unknown:
        raise InvalidInput(f'unknown inputs {unknown}; the inputs are "{V2_WORD_INPUT}" and "{V2_IMAGE_INPUT}"')
    if len(set(names)) != len(names):
        raise InvalidInput(f"each input may appear once, got {names}")

    counts = [_v2_count(inp) for inp in inputs]
    _check_batch_size(sum(counts), limits, "the request")

    items = []
    for inp in inputs:
        for i, value in enumerate(_v2_values(inp)):
            where = f"inputs[{inp.name}][{i}]"
            if inp.name == V2_WORD_INPUT:
                items.append(WorkItem(where, word=normalise_word(value, where, alphabet, max_word_length)))
            else:
                items.append(WorkItem(where, image=decode_base64_image(value, where, limits)))
    return ParsedRequest(items, "v2", infer_request=request)


def _check_v2_text_fields(request: InferRequest) -> None:
    """The request's names and id are strings that a JSON response can carry.

    A JSON body's lone surrogate ("\\ud800") is valid JSON but not UTF-8: echoed in the response
    id or an error message it would fail the response's encoding (a 500). The binary extension
    skips kserve's schema, so the types are checked here as well.
    """
    fields = [("id", request.id)] if request.id is not None else []
    for i, inp in enumerate(request.inputs or []):
        fields += [(f"inputs[{i}].name", inp.name), (f"inputs[{i}].datatype", inp.datatype)]
        if not isinstance(inp.shape, list | tuple):
            raise InvalidInput(f"inputs[{i}].shape must be a list of integers, got {_json_type(inp.shape)}")
    for i, out in enumerate(request.request_outputs or []):
        fields.append((f"outputs[{i}].name", out.name))
    for what, value in fields:
        if not isinstance(value, str):
            raise InvalidInput(f"{what} must be a string, got {_json_type(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{what} is not valid UTF-8 text (a lone surrogate?): {value!r}") from None


def _v2_count(inp) -> int:
    """Validate an input's datatype and shape (not its data); return its element count."""
    if inp.datatype != "BYTES":
        raise InvalidInput(f'input "{inp.name}" must have datatype BYTES, got {inp.datatype}')
    shape = list(inp.shape or [])
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise InvalidInput(f'input "{inp.name}" has an invalid shape {shape}')
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise InvalidInput(f'input "{inp.name}" must have shape [N] (or [N, 1]), got {shape}')
    return shape[0]


def _v2_values(inp) -> list:
    """The input's elements, after checking the data matches its declared shape."""
    count = _v2_count(inp)
    if inp._raw_data is not None:
        # Binary tensor (REST binary extension or gRPC raw contents): kserve must decode it;
        # a malformed buffer is the client's error, not the server's.
        try:
            values = inp.as_numpy()
        except Exception as exc:
            raise InvalidInput(f'input "{inp.name}": binary data does not match shape {inp.shape} ({exc})') from None
        return list(values.reshape(-1))
    data = inp.data
    if not isinstance(data, list):
        raise InvalidInput(f'input "{inp.name}": data must be a list, got {_json_type(data)}')
    if len(data) != count:
        raise InvalidInput(
            f'input "{inp.name}": shape {inp.shape} says {count} elements but data has {len(data)}'
        )
    for i, value in enumerate(data):
        if not isinstance(value, str | bytes):
            raise InvalidInput(f'inputs[{inp.name}][{i}] must be a string, got {_json_type(value)}')
    # Now that shape and element types agree, as_numpy cannot fail on a reshape.
    return list(inp.as_numpy().reshape(-1))


# --------------------------------------------------------------------------- responses


def _top(recognition, k: int) -> tuple[list[str], list[float]]:
    """Exactly ``k`` paths, best first; padded with ("", 0.0) if the decoder found fewer."""
    pairs = sorted(
        zip(recognition.top_paths, recognition.top_confidences, strict=True), key=lambda p: -float(p[1])
    )[:k]
    pairs += [("", 0.0)] * (k - len(pairs))
    return [str(p) for p, _ in pairs], [float(c) for _, c in pairs]


def v1_prediction(recognition, top_k: int = DEFAULT_LIMITS.top_k, model_input_png: bytes | None = None) -> dict:
    paths, confidences = _top(recognition, top_k)
    prediction = {
        "pred_text": str(recognition.text),
        "confidence": float(recognition.confidence),
        f"top_{top_k}_paths": paths,
        f"top_{top_k}_confidences": confidences,
    }
    if model_input_png is not None:
        prediction[MODEL_INPUT_KEY] = base64.b64encode(model_input_png).decode("ascii")
    return prediction


def v1_response(
    recognitions: list, top_k: int = DEFAULT_LIMITS.top_k, model_input_pngs: list[bytes | None] | None = None
) -> dict:
    """``model_input_pngs``: per recognition, the PNG to return (items that asked) or None."""
    pngs = model_input_pngs or [None] * len(recognitions)
    return {"predictions": [v1_prediction(r, top_k, png) for r, png in zip(recognitions, pngs, strict=True)]}


def v2_response(
    recognitions: list, model_name: str, request: InferRequest | None, top_k: int = DEFAULT_LIMITS.top_k
) -> InferResponse:
    n = len(recognitions)
    tops = [_top(r, top_k) for r in recognitions]
    outputs = [
        InferOutput("pred_text", [n], "BYTES", [str(r.text) for r in recognitions]),
        InferOutput("confidence", [n], "FP32", [float(r.confidence) for r in recognitions]),
        InferOutput(f"top_{top_k}_paths", [n, top_k], "BYTES", [p for paths, _ in tops for p in paths]),
        InferOutput(f"top_{top_k}_confidences", [n, top_k], "FP32", [c for _, confs in tops for c in confs]),
    ]
    return InferResponse(
        response_id=(request.id if request is not None and request.id else ""),
        model_name=model_name,
        infer_outputs=outputs,
        use_binary_outputs=bool(request is not None and request.use_binary_outputs),
        requested_outputs=(request.request_outputs if request is not None else None),
    )


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages a client will recognise."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
