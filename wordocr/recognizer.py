"""Fast inference over a model artifact: preprocessed uint8 images in, words with confidences out.

Two runtimes read the same artifact: ONNX Runtime over ``model.onnx``
(``wordocr.onnx_recognizer``, the predictor's default: no TensorFlow in the process) and the
Keras model on TensorFlow (``Recognizer`` below, kept for training, evaluation and comparison).
``load_reader`` picks one. Both share ``Reader``: decoding, spelling and the second look.

On the TensorFlow path, calling a Keras model eagerly or through ``model.predict`` costs 50-200 ms per image; a
``tf.function`` traced once for a fixed ``[None, H, W]`` signature costs a few. Single images
and pairs go through an XLA-compiled version of the same function, faster on CPU. XLA
compiles once per input shape, so a batch is padded up to the next of the fixed sizes in
``XLA_BATCH_BUCKETS``, each compiled at load; batches above them stay on the plain traced
function, which is as fast or faster there. Everything is traced and run once at
load (warm-up), so the first request pays nothing extra. Traced functions read the weights and
keep no per-call state, so calls from worker threads are safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wordocr.alphabet import Alphabet
from wordocr.artifact import load_language_model
from wordocr.calibration import Calibration
from wordocr.char_lm import CANDIDATES, CharLanguageModel
from wordocr.config import InputSpec
from wordocr.decode import beam_decode, greedy_decode_with_confidence
from wordocr.second_look import SECOND_LOOK_BELOW, variants

log = logging.getLogger(__name__)

BEAM_WIDTH = 10
# Batch sizes compiled with XLA at load (about 0.5-2.5 s each on 2 cores). Measured on the
# default model on 2 shared cores: XLA halves batch-1 latency, is even at batch 4-8 and 15-20 %
# slower at 32-256, so single images and pairs take the XLA path (a pair: the second look's two
# variants of an unsure image, 11.9 -> 9.1 ms p50 for the whole reading); larger batches use the
# plain traced function.
XLA_BATCH_BUCKETS = (1, 2)


@dataclass
class Recognition:
    # With beam search (top_k > 0) the reading is the beam's best word (by image and spelling when
    # the artifact has a spelling model), and its confidence the summed probability of all its
    # alignments; with top_k=0 it is the greedy reading (image only) and the probability of its
    # single best alignment (a lower bound of the same quantity).
    text: str
    confidence: float  # 0..1
    top_paths: list[str] = field(default_factory=list)  # beam search words, best first
    top_confidences: list[float] = field(default_factory=list)  # 0..1, each word's beam probability

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": self.confidence,
            "top_paths": self.top_paths,
            "top_confidences": self.top_confidences,
        }


class Reader:
    """Reads words from images already preprocessed to the artifact's ``InputSpec``.

    What turns pixels into logits is the subclass's (``logits``): Keras/TensorFlow here,
    ONNX Runtime in ``wordocr.onnx_recognizer``. Decoding, the spelling model and the second
    look are the same for both.
    """

    runtime = "abstract"

    def __init__(
        self,
        spec: InputSpec,
        alphabet: Alphabet,
        info: dict[str, Any] | None = None,
        language_model: CharLanguageModel | None = None,
        second_look_below: float = SECOND_LOOK_BELOW,
    ):
        self.spec = spec
        self.alphabet = alphabet
        self.info = info or {}
        self.language_model = language_model
        self.second_look_below = second_look_below  # 0 turns the second look off
        # From raw confidence to the probability of being right (None: raw, as before calibration).
        self.calibration = Calibration.from_dict(self.info.get("calibration"))

    def warm_up(self) -> None:
        """Run the whole path once (the beam search compiles with numba, about a second), so no
        request waits for it."""
        self.recognize(np.full((1, self.spec.height, self.spec.width), 255, dtype=np.uint8))

    def logits(self, images: np.ndarray) -> np.ndarray:
        """CTC logits ``[N, time_steps, classes]`` for uint8 ``[N, H, W]`` images."""
        raise NotImplementedError

    def _check(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        expected = (self.spec.height, self.spec.width)
        if images.ndim != 3 or images.shape[1:] != expected:
            raise ValueError(f"images must be [N, {expected[0]}, {expected[1]}] (or one [H, W]), got {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 pixels, got {images.dtype}")
        return images

    def recognize(self, images: np.ndarray, top_k: int = 3) -> list[Recognition]:
        """One ``Recognition`` per image; ``top_k=0`` skips beam search (greedy reading only).

        With beam search, readings less sure than ``second_look_below`` get a second look
        (``wordocr.second_look``): the most confident reading of the image and its lighter and
        heavier variants is kept, with that reading's top paths; a variant's empty reading never is.
        Beam readings come back calibrated where the artifact has a calibration
        (``wordocr.calibration``), greedy ones raw; the second look's threshold is on the
        confidence that comes back, so it means the same chance of being right for every model.
        """
        images = self._check(images)
        results = self._read(images, top_k)
        if top_k > 0:
            self._second_look(images, results, top_k)
            if self.calibration is not None:
                _calibrate(results, self.calibration)
        return results

    def _second_look(self, images: np.ndarray, results: list[Recognition], top_k: int) -> None:
        below = self.second_look_below
        if self.calibration is not None:  # readings are still raw here
            below = self.calibration.invert(below)
        unsure = [i for i, r in enumerate(results) if r.confidence < below]
        if unsure:
            second = self._read(variants(images[unsure]), top_k)
            for j, i in enumerate(unsure):
                for candidate in (second[j], second[j + len(unsure)]):
                    # A variant can fade a lone thin letter away; no reading is never a better one.
                    if candidate.text and candidate.confidence > results[i].confidence:
                        results[i] = candidate

    def _read(self, images: np.ndarray, top_k: int) -> list[Recognition]:
        logits = self.logits(images)
        best = greedy_decode_with_confidence(logits, self.alphabet)
        if top_k <= 0 or len(logits) == 0:
            return [Recognition(text, conf, [text], [conf]) for text, conf in best]
        beams = beam_decode(logits, self.alphabet, top_k=top_k, beam_width=max(BEAM_WIDTH, top_k),
                            language_model=self.language_model, candidates=CANDIDATES)  # fmt: skip
        return [
            Recognition(*(paths[0] if paths else greedy), [w for w, _ in paths], [p for _, p in paths])
            for greedy, paths in zip(best, beams, strict=True)
        ]


def _calibrate(results: list[Recognition], calibration: Calibration) -> None:
    """Each reading's confidence mapped by ``calibration`` (one vectorised call). The calibration
    is fitted for the reading, which is the first top path; the runners-up keep their beam
    shares, scaled down where the reading's confidence rose so that the top paths still sum to at
    most 1, and never above the reading's, so the top paths stay sorted."""
    raw = np.array([r.confidence for r in results], np.float64)
    mapped = calibration.apply(raw)
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = np.where(raw < 1.0, np.minimum(1.0, (1.0 - mapped) / (1.0 - raw)), 0.0)
    for result, confidence, scale in zip(results, mapped.tolist(), scales.tolist(), strict=True):
        result.confidence = confidence
        if result.top_confidences:
            runners_up = [min(c * scale, confidence) for c in result.top_confidences[1:]]
            result.top_confidences = [confidence, *runners_up]


class Recognizer(Reader):
    """The Keras model run by TensorFlow: traced ``tf.function``s, XLA for batches of 1 and 2."""

    runtime = "keras"

    def __init__(
        self,
        model,
        spec: InputSpec,
        alphabet: Alphabet,
        info: dict[str, Any] | None = None,
        xla_batch_buckets: tuple[int, ...] = XLA_BATCH_BUCKETS,
        language_model: CharLanguageModel | None = None,
        second_look_below: float = SECOND_LOOK_BELOW,
    ):
        import tensorflow as tf

        super().__init__(spec, alphabet, info, language_model, second_look_below)
        self._model = model

        def _logits(images):
            return model(tf.cast(images, tf.float32), training=False)

        # Concrete functions are traced (and compiled) now, once, and never again.
        shape = [spec.height, spec.width]
        self._logits_fn = tf.function(_logits).get_concrete_function(tf.TensorSpec([None, *shape], tf.uint8))
        self._xla_fns: dict[int, Any] = {}
        compiled = tf.function(_logits, jit_compile=True)
        for size in sorted(set(xla_batch_buckets)):
            try:
                fn = compiled.get_concrete_function(tf.TensorSpec([size, *shape], tf.uint8))
                fn(np.full((size, *shape), 255, dtype=np.uint8))
            except Exception:  # XLA is an optimisation; the plain function always works
                log.warning("XLA compilation for batch %d failed; using the plain function", size, exc_info=True)
                self._xla_fns.clear()
                break
            self._xla_fns[size] = fn
        self._xla_sizes = sorted(self._xla_fns)
        self.warm_up()

    @classmethod
    def load(cls, artifact_uri: str, xla_batch_buckets: tuple[int, ...] = XLA_BATCH_BUCKETS) -> Recognizer:
        from wordocr.artifact import load_artifact

        model, spec, alphabet, info = load_artifact(artifact_uri)
        language_model = load_language_model(artifact_uri, info)
        return cls(model, spec, alphabet, info, xla_batch_buckets=xla_batch_buckets, language_model=language_model)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """CTC logits ``[N, time_steps, classes]`` for uint8 ``[N, H, W]`` images."""
        images = self._check(images)
        count = len(images)
        bucket = next((size for size in self._xla_sizes if size >= count), None)
        if bucket is None or count == 0:
            return self._logits_fn(images).numpy()
        if bucket > count:
            # Pad with blank (white) images up to the compiled shape; their rows are dropped.
            padding = np.full((bucket - count, *images.shape[1:]), 255, dtype=np.uint8)
            images = np.concatenate([images, padding])
        return self._xla_fns[bucket](images).numpy()[:count]


RUNTIMES = ("onnx", "keras")


def load_reader(artifact_uri: str, runtime: str = "onnx") -> Reader:
    """The artifact's reader on ``runtime``: "onnx" (ONNX Runtime, no TensorFlow) or "keras"."""
    if runtime == "keras":
        return Recognizer.load(artifact_uri)
    if runtime == "onnx":
        from wordocr.onnx_recognizer import OnnxRecognizer

        return OnnxRecognizer.load(artifact_uri)
    raise ValueError(f"unknown runtime {runtime!r}; choose one of {RUNTIMES}")
