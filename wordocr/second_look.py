"""A second look at a word the model is unsure of: the same image with lighter and heavier strokes.

Stroke weight is where unseen fonts stray furthest from the training faces: a heavy italic whose
m closes up like a w, an old-style face whose hairlines fade. When the best reading of an image
is less sure than ``SECOND_LOOK_BELOW``, the recognizer also reads two variants of it, one with
the anti-aliased edges of the strokes lightened (a little thinner) and one with the ink grown by
a pixel (heavier), and keeps the most confident of the three readings. Sure readings, nearly all
clean text, cost nothing extra.

Chosen on fonts that neither train nor test the model (17 unseen families and the round-u
probe): the pair and the threshold that gained most there, about 0.15 points a set on average.
On the held-out test fonts, for each of eight models: clean text +0.25 to +0.65 points, hard
+0.1 to +0.75, noisy -0.1 to +0.5 (README, Measured).
"""

from __future__ import annotations

import numpy as np

# Readings less sure than this get the second look; the recognizer's confidence of a beam reading
# (the summed probability of its alignments, reranked by spelling; calibrated where the model has
# a calibration) is the measure. Chosen again on the calibrated score of the model that reads
# capitals and digits: every threshold from 0.5 to 0.95, and none, read its validation faces
# within 0.1 points of each other (docs/experiments.md, 2026-12-05), so 0.7 stays.
SECOND_LOOK_BELOW = 0.7


def lighter_strokes(images: np.ndarray) -> np.ndarray:
    """uint8 ``[..., H, W]`` dark-on-light images with partial ink lightened: ink' = ink² / 255.

    Solid ink and clean paper stay as they are; the gray edge pixels of a stroke fade, so strokes
    read about half a pixel thinner on each side and counters open.
    """
    ink = 255 - images.astype(np.uint16)
    return (255 - ink * ink // 255).astype(np.uint8)


def heavier_strokes(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, H, W]`` dark-on-light images with the ink grown by one pixel (a 3x3 minimum).

    The border counts as paper, so nothing grows in from outside the image.
    """
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), constant_values=255)
    height, width = images.shape[1:]
    out = images.copy()
    for dy in range(3):
        for dx in range(3):
            np.minimum(out, padded[:, dy : dy + height, dx : dx + width], out=out)
    return out


def variants(images: np.ndarray) -> np.ndarray:
    """``[2N, H, W]``: the lighter variants of the N images, then the heavier ones."""
    return np.concatenate([lighter_strokes(images), heavier_strokes(images)])
