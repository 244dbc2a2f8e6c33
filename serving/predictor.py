"""The word-ocr KServe predictor: load a model artifact, read words and images.

The class only does the model's job (kserve's load / preprocess / predict / postprocess);
request validation and response shapes live in :mod:`serving.payloads`, the HTTP server is
kserve's ``ModelServer`` (started by ``python -m serving``).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from kserve import Model
from kserve.protocol.infer_type import InferRequest, InferResponse

from serving import payloads
from serving.payloads import ParsedRequest, ServingLimits, WorkItem

log = logging.getLogger(__name__)


def resolve_artifact_uri(model_dir: str) -> str:
    """The artifact to load: ``model_dir`` itself, or the version its ``current.json`` names.

    ``model_dir`` may be an artifact folder or a published model's folder
    (``<serving_root>/<model_name>``, see :mod:`wordocr.publish`). When KServe's storage
    initializer copied a whole model folder to /mnt/models, the pointer's version is loaded from
    the local copy; otherwise from the URI the pointer records.
    """
    from wordocr import artifact, publish, storage

    if storage.exists(storage.join(model_dir, artifact.SPEC_FILE)):
        return model_dir
    pointer_uri = storage.join(model_dir, publish.POINTER_NAME)
    if not storage.exists(pointer_uri):
        raise FileNotFoundError(
            f"{model_dir} holds neither a model artifact ({artifact.SPEC_FILE}) nor a {publish.POINTER_NAME}"
        )
    pointer = json.loads(storage.read_bytes(pointer_uri))
    local_copy = storage.join(model_dir, pointer["version"])
    chosen = local_copy if storage.exists(storage.join(local_copy, artifact.SPEC_FILE)) else pointer["uri"]
    log.info("%s points at version %s: loading %s", model_dir, pointer["version"], chosen)
    return chosen


@dataclass
class RecognizedBatch:
    request: ParsedRequest
    recognitions: list  # list[wordocr.recognizer.Recognition], one per request item
    model_input_pngs: list[bytes | None]  # per item: the model input as PNG if the item asked for it


class WordOCRModel(Model):
    def __init__(self, name: str, model_dir: str, limits: ServingLimits = payloads.DEFAULT_LIMITS):
        super().__init__(name)
        self.model_dir = model_dir
        self.limits = limits
        self.recognizer = None
        # Inference runs on one dedicated thread: off the event loop, so health checks and request
        # parsing never wait behind a batch (FACTS: a sync predict stalls them), and one batch at a
        # time, because TensorFlow already spreads one batch over every core.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wordocr-infer")

    def load(self) -> bool:
        # Imported here so that `import serving` (and the payload tests) need no TensorFlow.
        from wordocr.recognizer import Recognizer

        start = time.perf_counter()
        artifact_uri = resolve_artifact_uri(self.model_dir)
        self.recognizer = Recognizer.load(artifact_uri)
        # One word end to end loads the font and warms rendering (the recognizer traced the model
        # and compiled the beam search already): the first client's request should pay for none.
        self._recognize([WorkItem("warm-up", word="warm", return_image=True)])
        spec = self.recognizer.spec
        log.info(
            "loaded %s in %.1f s: input %dx%d, max word length %d, info %s",
            artifact_uri, time.perf_counter() - start, spec.height, spec.width,
            spec.max_word_length, self.recognizer.info,
        )
        self.ready = True
        return self.ready

    def validate(self, payload):
        # kserve's check assumes a dict or InferRequest; ours is already validated by preprocess.
        if isinstance(payload, ParsedRequest):
            return payload
        return super().validate(payload)

    async def preprocess(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> ParsedRequest:
        spec, alphabet = self.recognizer.spec, self.recognizer.alphabet
        if isinstance(payload, InferRequest):
            return payloads.parse_v2(payload, alphabet, spec.max_word_length, self.limits)
        return payloads.parse_v1(payload, alphabet, spec.max_word_length, self.limits)

    async def predict(
        self, payload: ParsedRequest, headers: dict[str, str] | None = None, response_headers=None
    ) -> RecognizedBatch:
        loop = asyncio.get_running_loop()
        recognitions, model_input_pngs = await loop.run_in_executor(self._executor, self._recognize, payload.items)
        return RecognizedBatch(payload, recognitions, model_input_pngs)

    async def postprocess(
        self, result: RecognizedBatch, headers: dict[str, str] | None = None, response_headers=None
    ) -> dict | InferResponse:
        top_k = self.limits.top_k
        if result.request.protocol == "v2":
            return payloads.v2_response(result.recognitions, self.name, result.request.infer_request, top_k)
        return payloads.v1_response(result.recognitions, top_k, result.model_input_pngs)

    def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        super().stop()

    # ------------------------------------------------------------------ on the inference thread

    def _recognize(self, items: list[WorkItem]) -> tuple[list, list[bytes | None]]:
        images = np.stack([self._model_input(item) for item in items])
        recognitions = self.recognizer.recognize(images, top_k=self.limits.top_k)
        pngs = [_png(image) if item.return_image else None for item, image in zip(items, images, strict=True)]
        return recognitions, pngs

    def _model_input(self, item: WorkItem) -> np.ndarray:
        from wordocr.preprocess import InvalidImageError, decode_image_bytes, preprocess
        from wordocr.render import render_request_word

        spec = self.recognizer.spec
        if item.word is not None:
            return preprocess(render_request_word(item.word), spec)
        try:
            image = decode_image_bytes(item.image)
        except InvalidImageError as exc:
            # The client's bytes, not the server, are at fault: a 400 that says why.
            log.info("%s: unreadable image: %s", item.where, exc)
            raise payloads.image_error(item.where, exc) from None
        return preprocess(image, spec)


def _png(image: np.ndarray) -> bytes:
    """A model input (uint8 gray [height, width], so an 8-bit gray PNG) as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
