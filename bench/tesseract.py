"""Tesseract, the engine a user would otherwise pick, read in-process through ``tesserocr``.

The bench gives it the very images our model reads: the datasets keep only the preprocessed
``InputSpec`` image (gray, dark ink on light, 32 px high), so that is what Tesseract gets too,
upscaled (Tesseract reads text this small poorly) and framed in a white border (it misses ink
that touches the edge). It runs in single-line mode (``--psm 7``, better than ``--psm 8`` for
single words) with its characters limited to our alphabet, so neither engine can lose a word to
a character the task never contains; its output is lower-cased with white space removed (for the
cells of words as people write them, its characters are the written alphabet's, case kept).

``tesserocr`` is optional (``make bench`` installs it): ``unavailable_reason()`` says why it
cannot be used, and nothing here imports it before a ``TesseractReader`` is made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageOps

from wordocr.config import ALPHABET

# libtesseract runs OpenMP threads that spin on these 2 shared cores: one image took 46 ms with
# them and 10 ms without. libgomp reads this when it loads, i.e. before tesserocr is first imported.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

NOT_INSTALLED = "Tesseract: not installed (make bench installs it)"


@dataclass(frozen=True)
class TesseractSettings:
    scale: int = 3  # upscale factor of the 32 px high input (LANCZOS)
    border: int = 10  # white pixels added on each side after upscaling
    psm: int = 7  # tesserocr.PSM.SINGLE_LINE
    lang: str = "eng"
    whitelist: str = ALPHABET
    # Lower-case its output: the a-z cells compare with lower-case words whatever Tesseract makes
    # of a letter's case; the cells of words as written keep it.
    lower_case: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def unavailable_reason() -> str | None:
    """None when tesserocr and its English data load; else a line for the report."""
    try:
        import tesserocr
    except ImportError:
        return NOT_INSTALLED
    if "eng" not in tesserocr.get_languages()[1]:
        return "Tesseract: no English data (apt-get install tesseract-ocr-eng)"
    return None


def version() -> str:
    import tesserocr

    return f"tesserocr {tesserocr.__version__}, {tesserocr.tesseract_version().splitlines()[0]}"


class TesseractReader:
    """One Tesseract engine: ``read(images)`` gives the words it sees, in order (lower-case unless
    its settings keep case)."""

    def __init__(self, settings: TesseractSettings = TesseractSettings()) -> None:
        from tesserocr import PyTessBaseAPI

        self.settings = settings
        self._api = PyTessBaseAPI(psm=settings.psm, lang=settings.lang)
        if settings.whitelist:
            self._api.SetVariable("tessedit_char_whitelist", settings.whitelist)

    def prepare(self, image: np.ndarray) -> Image.Image:
        """The uint8 [height, width] input, upscaled and framed the way Tesseract reads best."""
        pil = Image.fromarray(image)
        s = self.settings
        if s.scale != 1:
            pil = pil.resize((pil.width * s.scale, pil.height * s.scale), Image.Resampling.LANCZOS)
        return ImageOps.expand(pil, s.border, fill=255) if s.border else pil

    def read_one(self, image: np.ndarray) -> str:
        self._api.SetImage(self.prepare(image))
        text = "".join(self._api.GetUTF8Text().split())
        return text.lower() if self.settings.lower_case else text

    def read(self, images: Sequence[np.ndarray] | np.ndarray) -> list[str]:
        return [self.read_one(image) for image in images]

    def close(self) -> None:
        self._api.End()

    def __enter__(self) -> TesseractReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_parallel(readers: Sequence[TesseractReader], images: Sequence[np.ndarray]) -> list[str]:
    """Split ``images`` over the readers, one thread each (tesserocr releases the GIL while it reads)."""
    if len(readers) == 1:
        return readers[0].read(images)
    chunks = [images[i :: len(readers)] for i in range(len(readers))]
    with ThreadPoolExecutor(len(readers)) as pool:
        parts = list(pool.map(lambda pair: pair[0].read(pair[1]), zip(readers, chunks, strict=True)))
    out = [""] * len(images)
    for i, part in enumerate(parts):
        out[i :: len(readers)] = part
    return out
