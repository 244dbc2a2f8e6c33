"""The word-ocr KServe predictor: load a model artifact, read words and images.

The class only does the model's job (kserve's load / preprocess / predict / postprocess);
request validation and response shapes live in :mod:`serving.payloads`, the queue and budget
limits in :mod:`serving.overload`, the batching of concurrent requests in
:mod:`serving.batcher`, and the HTTP server is kserve's ``ModelServer`` (started by
``python -m serving``). The model runs on ONNX Runtime by default (no TensorFlow in the
process); ``runtime="keras"`` runs the Keras model on TensorFlow instead, for comparison.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from kserve import Model
from kserve.protocol.infer_type import InferRequest, InferResponse

from serving import payloads
from serving.batcher import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_S, MicroBatcher
from serving.overload import (
    DEFAULT_OVERLOAD_LIMITS,
    Admission,
    OverloadLimits,
    image_pixels,
    over_pixel_budget,
)
from serving.payloads import ParsedRequest, ServingLimits, WorkItem
from wordocr.publish import resolve_artifact_uri

log = logging.getLogger(__name__)

RUNTIMES = ("onnx", "keras")  # wordocr.recognizer.load_reader's; named here to keep TensorFlow out
DEFAULT_RUNTIME = "onnx"
# Which model run read a request: "images=12; requests=5" (shared with 4 other requests).
BATCH_HEADER = "x-model-batch"


@dataclass
class RecognizedBatch:
    request: ParsedRequest
    recognitions: list  # list[wordocr.recognizer.Recognition], one per request item
    model_input_pngs: list[bytes | None]  # per item: the model input as PNG if the item asked for it


@dataclass(frozen=True)
class BatchingConfig:
    max_batch: int = DEFAULT_MAX_BATCH  # images per model run, from however many requests
    max_wait_s: float = DEFAULT_MAX_WAIT_S  # how long a run waits for requests still being decoded


class WordOCRModel(Model):
    """Each request goes through three stages:

    1. admission (event loop): beyond the bounded queue, 503 with Retry-After (``serving.overload``);
    2. decoding (a small thread pool): image headers checked against the per-request pixel
       budget, then images decoded and preprocessed, words rendered; a bad item fails its own
       request here, with a 4xx, before it can meet anyone else's;
    3. reading (one inference thread, ``serving.batcher``): the request's images join those of
       the requests queued with it in one model run, and it gets back its own rows.
    """

    def __init__(
        self,
        name: str,
        model_dir: str,
        limits: ServingLimits = payloads.DEFAULT_LIMITS,
        runtime: str = DEFAULT_RUNTIME,
        batching: BatchingConfig = BatchingConfig(),
        overload: OverloadLimits = DEFAULT_OVERLOAD_LIMITS,
    ):
        # Response headers on: each answer says which model run read it (BATCH_HEADER).
        super().__init__(name, return_response_headers=True)
        self.model_dir = model_dir
        self.limits = limits
        self.runtime = runtime
        self.batching = batching
        self.admission = Admission(overload)
        self.recognizer = None
        self.batcher: MicroBatcher | None = None
        self._decoders = ThreadPoolExecutor(max_workers=overload.decode_threads, thread_name_prefix="wordocr-decode")

    def load(self) -> bool:
        # Imported here so that `import serving` (and the payload tests) load no model runtime.
        from wordocr.recognizer import load_reader

        start = time.perf_counter()
        artifact_uri = resolve_artifact_uri(self.model_dir)
        self.recognizer = load_reader(artifact_uri, self.runtime)
        self.batcher = MicroBatcher(self._read_batch, self.batching.max_batch, self.batching.max_wait_s)
        # One word end to end loads the font and warms rendering (the recognizer ran the model and
        # compiled the beam search already): the first client's request should pay for none.
        images, _ = self._prepare([WorkItem("warm-up", word="warm", return_image=True)])
        self._read_batch(images)
        spec = self.recognizer.spec
        log.info(
            "loaded %s on %s in %.1f s: input %dx%d, max word length %d, batches of up to %d images, info %s",
            artifact_uri, self.runtime, time.perf_counter() - start, spec.height, spec.width,
            spec.max_word_length, self.batching.max_batch, self.recognizer.info,
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
        items = payload.items
        encoded = sum(len(item.image) for item in items if item.image is not None)
        self.admission.enter(len(items), encoded)
        try:
            loop = asyncio.get_running_loop()
            with self.batcher.expecting() as ticket:
                images, pngs = await loop.run_in_executor(self._decoders, self._prepare, items)
                recognitions, run = await self.batcher.submit(images, ticket)
        finally:
            self.admission.leave(len(items), encoded)
        if response_headers is not None:
            response_headers[BATCH_HEADER] = run.header()
        return RecognizedBatch(payload, recognitions, pngs)

    async def postprocess(
        self, result: RecognizedBatch, headers: dict[str, str] | None = None, response_headers=None
    ) -> dict | InferResponse:
        top_k = self.limits.top_k
        if result.request.protocol == "v2":
            return payloads.v2_response(result.recognitions, self.name, result.request.infer_request, top_k)
        return payloads.v1_response(result.recognitions, top_k, result.model_input_pngs)

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()
        self._decoders.shutdown(wait=False, cancel_futures=True)
        super().stop()

    # ------------------------------------------------------------------ on a decoding thread

    def _prepare(self, items: list[WorkItem]) -> tuple[np.ndarray, list[bytes | None]]:
        """The request's model inputs ``[n, H, W]`` and the PNGs its items asked for."""
        self._check_pixel_budget(items)
        images = np.stack([self._model_input(item) for item in items])
        pngs = [_png(image) if item.return_image else None for item, image in zip(items, images, strict=True)]
        return images, pngs

    def _check_pixel_budget(self, items: list[WorkItem]) -> None:
        budget = self.admission.limits.max_decoded_pixels
        total = 0
        for item in items:
            if item.image is None:
                continue
            total += image_pixels(item.image) or 0
            if total > budget:
                log.info("%s: refused, the request's images pass %d decoded pixels", item.where, budget)
                raise over_pixel_budget(item.where, total, budget)

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

    # ------------------------------------------------------------------ on the inference thread

    def _read_batch(self, images: np.ndarray) -> list:
        return self.recognizer.recognize(images, top_k=self.limits.top_k)


def _png(image: np.ndarray) -> bytes:
    """A model input (uint8 gray [height, width], so an 8-bit gray PNG) as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
