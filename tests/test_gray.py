"""to_gray: any array or PIL image a caller holds as uint8 gray."""

import numpy as np
import pytest
from PIL import Image

from wordocr.gray import to_gray


def test_transparent_pixels_are_white_paper_and_colour_is_luminance():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (0, 0, 0, 255)  # opaque black ink
    assert to_gray(rgba).tolist() == [[0, 255], [255, 255]]
    assert to_gray(Image.fromarray(rgba, "RGBA")).tolist() == [[0, 255], [255, 255]]
    assert to_gray(np.full((1, 1, 3), (255, 0, 0), np.uint8)).tolist() == [[76]]  # ITU-R 601 red


def test_other_dtypes_are_scaled_to_the_byte_range():
    assert to_gray(np.array([[0.0, 1.0]], np.float32)).tolist() == [[0, 255]]
    assert to_gray(np.array([[False, True]])).tolist() == [[0, 255]]
    assert to_gray(np.array([[1000, 3000]], np.uint16)).tolist() == [[0, 255]]  # the used range
    assert to_gray(np.zeros((0, 4, 3), np.uint8)).shape == (0, 4)


@pytest.mark.parametrize("shape", [(4,), (4, 4, 2), (2, 2, 2, 2)])
def test_shapes_that_are_not_images_are_refused(shape):
    with pytest.raises(ValueError, match="expected a gray"):
        to_gray(np.zeros(shape, np.uint8))
