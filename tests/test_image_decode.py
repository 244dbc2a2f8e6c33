"""decode_image_bytes: a client's bytes to a gray array, or InvalidImageError saying why not."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from wordocr.image_decode import InvalidImageError, decode_image_bytes
from wordocr.render import render_request_word


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_decode_reads_png_and_jpeg():
    word = render_request_word("decode")
    assert np.array_equal(decode_image_bytes(_png(word)), word)
    buf = io.BytesIO()
    Image.fromarray(word).convert("RGB").save(buf, format="JPEG")
    assert decode_image_bytes(buf.getvalue()).shape == word.shape


@pytest.mark.parametrize("data", [b"", b"definitely not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 10])
def test_decode_refuses_non_images(data):
    with pytest.raises(InvalidImageError):
        decode_image_bytes(data)


def test_decode_refuses_truncated_images():
    data = _png(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8))
    with pytest.raises(InvalidImageError, match="truncated or corrupt"):
        decode_image_bytes(data[: len(data) // 2])


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file that claims a ``width`` x ``height`` canvas (its pixel data is a few bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(100_000, 100_000), (5_000, 5_000)])
def test_decode_refuses_decompression_bombs_before_decoding(size):
    with pytest.raises(InvalidImageError, match=r"too large|limit"):
        decode_image_bytes(_png_header_only(*size))


def test_decode_refuses_zero_size_images():
    with pytest.raises(InvalidImageError):
        decode_image_bytes(_png_header_only(0, 10))
