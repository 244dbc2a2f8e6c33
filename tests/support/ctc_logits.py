"""CTC logits written by hand for decoding tests: one image, each step's probabilities given."""

from __future__ import annotations

import numpy as np

from wordocr.alphabet import Alphabet

BLANK = "-"


def logits_from_probs(alphabet: Alphabet, steps: list[dict[str, float]], floor: float = 1e-9) -> np.ndarray:
    """``[1, len(steps), classes]`` log-probabilities whose step t has the given probabilities
    (``BLANK`` for the blank) and every other class ``floor``, normalised."""
    probs = np.full((1, len(steps), alphabet.num_classes), floor, np.float64)
    for t, step in enumerate(steps):
        for char, p in step.items():
            probs[0, t, alphabet.blank_index if char == BLANK else alphabet.chars.index(char)] = p
    return np.log(probs / probs.sum(-1, keepdims=True)).astype(np.float32)
