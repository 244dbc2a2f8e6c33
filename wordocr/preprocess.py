"""Turn any image of a word into the model's input: the one function training and serving share.

Geometry decides whether a model reads sizes and margins it never saw, so the image is
normalised rather than merely resized: polarity to dark ink on light paper, a crop to the ink
(found on a smoothed copy, ignoring specks and far-away clutter), contrast stretched so the ink
is black and the paper white, then scaled to the input height, widened by up to the spec's
``max_widen`` towards the input width, left-aligned and padded to the input width (squashed
horizontally only if the word would not fit).

Each step has its module: ``gray`` (any array or PIL image to uint8 gray), ``word_finder``
(where the word is, on what paper), ``paper`` (levels and lighting), ``word_box`` (the word's
box among rules, specks and neighbouring lines); ``image_decode`` reads a client's bytes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from wordocr.config import DEFAULT_INPUT_SPEC, InputSpec
from wordocr.gray import to_gray
from wordocr.image_decode import DECODE_FORMATS, InvalidImageError, decode_image_bytes
from wordocr.paper import stretch_table
from wordocr.word_finder import find_word

# The serving layer reads images through this module: one import for decoding and preprocessing.
__all__ = [
    "DECODE_FORMATS",
    "OUTPUT_MARGIN",
    "InvalidImageError",
    "blank_image",
    "decode_image_bytes",
    "preprocess",
    "to_gray",
]

# Empty border kept around the ink in the output, in output pixels.
OUTPUT_MARGIN = 2


def blank_image(spec: InputSpec = DEFAULT_INPUT_SPEC) -> np.ndarray:
    """The model input of an image without ink: all paper."""
    return np.full((spec.height, spec.width), 255, np.uint8)


def preprocess(image: np.ndarray | Image.Image, spec: InputSpec = DEFAULT_INPUT_SPEC) -> np.ndarray:
    """uint8 [spec.height, spec.width], dark ink on a 255 background; blank if there is no ink."""
    gray = to_gray(image)
    if gray.size == 0:
        return blank_image(spec)
    found = find_word(gray)
    if found is None:
        return blank_image(spec)
    top, bottom, left, right = found.box
    crop = gray[top:bottom, left:right]
    if found.lighting is not None:
        crop = found.lighting.flatten(crop, top, left, 1)

    inner_height = spec.height - 2 * OUTPUT_MARGIN
    inner_width = spec.width - 2 * OUTPUT_MARGIN
    natural_width = crop.shape[1] * inner_height / crop.shape[0]
    width = max(1, min(inner_width, round(natural_width * spec.max_widen)))
    resized = Image.fromarray(crop).resize((width, inner_height), Image.Resampling.BILINEAR, reducing_gap=3.0)

    levels = stretch_table(crop, found.inverted, found.paper)
    out = blank_image(spec)
    out[OUTPUT_MARGIN : OUTPUT_MARGIN + inner_height, OUTPUT_MARGIN : OUTPUT_MARGIN + width] = levels[
        np.asarray(resized)
    ]
    return out
