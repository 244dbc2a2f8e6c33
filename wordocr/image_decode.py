"""Untrusted image bytes (what a client sends) to a uint8 gray array, or an error saying why not.

Only formats Pillow decodes itself are read, and the pixel count is checked from the header
before any pixel is decoded; every way a malformed file can fail comes out as one exception type,
``InvalidImageError``, whose message the predictor passes back to the client.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageOps

from wordocr.gray import to_gray

# What a client may send. Only formats Pillow decodes itself: EPS/PS would run Ghostscript on the
# client's bytes, and the long tail of rare plugins is where malformed files raise odd exceptions.
DECODE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
# The most pixels an image may claim (a 5000 x 4000 photo).
MAX_PIXELS = 20_000_000


class InvalidImageError(ValueError):
    """Bytes that are not an image this service can read (with a message saying why)."""


def decode_image_bytes(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode PNG/JPEG/GIF/BMP/TIFF/WebP bytes (DECODE_FORMATS) to uint8 gray, refusing what is not safe to read.

    The pixel count is checked from the header, before any pixel is decoded, so a small file
    claiming a huge canvas (a decompression bomb) costs nothing.
    """
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
        raise InvalidImageError("no image data")
    try:
        # Image.open reads only the header. Pillow itself refuses images above twice
        # Image.MAX_IMAGE_PIXELS (DecompressionBombError, turned into InvalidImageError below);
        # our own, lower limit is checked here, before decoding. (No warnings.catch_warnings:
        # it is process-global and the predictor decodes in threads.)
        with Image.open(io.BytesIO(data), formats=DECODE_FORMATS) as image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InvalidImageError(f"image has zero size ({width}x{height})")
            if width * height > max_pixels:
                raise InvalidImageError(
                    f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
                )
            image.load()
            return to_gray(ImageOps.exif_transpose(image))
    except InvalidImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImageError(f"image is too large to decode safely: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise InvalidImageError("data is not an image in a format this service reads") from exc
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, ArithmeticError, LookupError, struct.error) as exc:
        # A malformed file reaches corners of Pillow's parsers that raise whatever the bad value
        # hit first (a TIFF strip offset given as a fraction: TypeError; a huge one: OverflowError).
        raise InvalidImageError(f"image is truncated or corrupt: {exc}") from exc
