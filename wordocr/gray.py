"""Any image a caller holds (PIL image or numpy array, any dtype, gray or colour) as uint8 gray."""

from __future__ import annotations

import numpy as np
from PIL import Image


def to_gray(image: np.ndarray | Image.Image) -> np.ndarray:
    """Any PIL image or numpy array (gray, RGB, RGBA; uint8, other ints, float, bool) as uint8 gray.

    Transparent pixels count as white paper, as an image viewer would show them on a page.
    """
    if isinstance(image, Image.Image):
        return np.asarray(_pil_to_gray(image))
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"expected a gray [H, W] or colour [H, W, 3|4] image, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(array.shape[:2], np.uint8)
    array = _to_uint8(array)
    if array.ndim == 2:
        return array
    return np.asarray(_pil_to_gray(Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "RGB")))


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    values = np.nan_to_num(array.astype(np.float32))
    if np.issubdtype(array.dtype, np.floating) and values.max() <= 1.0:
        values = values * 255.0  # floats in [0, 1]
    elif values.max() > 255.0:  # 16-bit and similar: rescale the used range
        low, high = values.min(), values.max()
        values = (values - low) * (255.0 / max(high - low, 1e-6))
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def _pil_to_gray(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return Image.fromarray(_to_uint8(np.asarray(image)))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    return image.convert("L")
