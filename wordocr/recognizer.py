"""Fast inference over a model artifact: preprocessed uint8 images in, words with confidences out.

Calling a Keras model eagerly or through ``model.predict`` costs 50-200 ms per image; a
``tf.function`` traced once for a fixed ``[None, H, W]`` signature costs a few. The function is
traced and run once at load (warm-up), so the first request pays nothing extra. A traced
function reads the weights and keeps no per-call state, so calls from worker threads are safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wordocr.alphabet import Alphabet
from wordocr.artifact import load_artifact
from wordocr.config import InputSpec
from wordocr.decode import beam_decode, greedy_decode_with_confidence

log = logging.getLogger(__name__)

BEAM_WIDTH = 10


@dataclass
class Recognition:
    # With beam search (top_k > 0) the reading is the most probable word, and its confidence the
    # summed probability of all its alignments; with top_k=0 it is the greedy reading and the
    # probability of its single best alignment (a lower bound of the same quantity).
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


class Recognizer:
    """Reads words from images already preprocessed to the artifact's ``InputSpec``."""

    def __init__(self, model, spec: InputSpec, alphabet: Alphabet, info: dict[str, Any] | None = None):
        import tensorflow as tf

        self.spec = spec
        self.alphabet = alphabet
        self.info = info or {}
        self._model = model

        @tf.function(input_signature=[tf.TensorSpec([None, spec.height, spec.width], tf.uint8, name="images")])
        def _logits(images):
            return model(tf.cast(images, tf.float32), training=False)

        # The concrete function is traced now, once, and never again.
        self._logits_fn = _logits.get_concrete_function()
        self.logits(np.full((1, spec.height, spec.width), 255, dtype=np.uint8))

    @classmethod
    def load(cls, artifact_uri: str) -> Recognizer:
        model, spec, alphabet, info = load_artifact(artifact_uri)
        return cls(model, spec, alphabet, info)

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

    def logits(self, images: np.ndarray) -> np.ndarray:
        """CTC logits ``[N, time_steps, classes]`` for uint8 ``[N, H, W]`` images."""
        images = self._check(images)
        return self._logits_fn(images).numpy()

    def recognize(self, images: np.ndarray, top_k: int = 3) -> list[Recognition]:
        """One ``Recognition`` per image; ``top_k=0`` skips beam search (about twice the throughput)."""
        logits = self.logits(images)
        best = greedy_decode_with_confidence(logits, self.alphabet)
        if top_k <= 0 or len(logits) == 0:
            return [Recognition(text, conf, [text], [conf]) for text, conf in best]
        beams = beam_decode(logits, self.alphabet, top_k=top_k, beam_width=max(BEAM_WIDTH, top_k))
        return [
            Recognition(*(paths[0] if paths else greedy), [w for w, _ in paths], [p for _, p in paths])
            for greedy, paths in zip(best, beams, strict=True)
        ]
